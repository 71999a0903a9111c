"""pose_suite/runtimes: fast mode's heavy part through OpenVINO or ONNX
Runtime, on the tiny models (the real configs' model types and heads) and
the real ones: the same boxes and keypoints as exact mode, the decision by
measurement, what a result records, and no telemetry. The converted files
and the fall-backs: tests/test_runtime_files.py."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, run_cli

from pose_suite.errors import ConfigError, SuiteWarning
from pose_suite.runtimes import choice as choice_module
from pose_suite.runtimes import seam
from pose_suite.runtimes.choice import MIN_SPEEDUP, decide
from pose_suite.runtimes.machine import machine_key
from runtime_helpers import RUNTIMES, build, frames, measured_as

pytestmark = pytest.mark.usefixtures('own_cache')


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_a_runtime_in_f32_gives_exact_modes_numbers(own_models, detector,
                                                    pose_service, runtime):
    """fp32 fast mode through each runtime against exact mode (whose
    numbers equal mmdet's ``inference_detector`` and mmpose's
    ``inference_topdown``, tests/test_detection_service.py and
    tests/test_pose_extraction_service.py): boxes within 1e-3 px, heatmaps
    within 1e-5 relative L2, keypoints within 1e-3 px but at near-ties:
    the tiny model's flat heatmaps have many (PyTorch's own fast mode moves
    3.8 % of its keypoints more, measured); the real models' test is
    below."""
    fast_detector, fast_pose = build(own_models, runtime)
    for loaded in (fast_detector.loaded, fast_pose.loaded):
        assert loaded.runtime.startswith(f'{runtime} ')
        assert loaded.runtime.endswith(' f32')
    shifts = []
    for frame in frames():
        boxes = detector.detect(frame)
        assert len(boxes) > 0
        np.testing.assert_allclose(fast_detector.detect(frame), boxes,
                                   atol=1e-3)
        exact_maps = pose_service.heatmaps(frame, boxes)
        error = np.linalg.norm(fast_pose.heatmaps(frame, boxes) -
                               exact_maps) / np.linalg.norm(exact_maps)
        assert 0 <= error < 1e-5
        for a, b in zip(pose_service.extract(frame, boxes),
                        fast_pose.extract(frame, boxes)):
            shifts.extend(np.linalg.norm(a['keypoints'] - b['keypoints'],
                                         axis=1))
    assert np.median(shifts) == 0 and np.mean(np.array(shifts) <= 1e-3) >= 0.95


def test_openvino_in_bf16_keeps_the_detectors_head_in_float32(own_models,
                                                              detector):
    """bf16 through OpenVINO: RTMDet's head stays PyTorch float32 (its
    class scores in bf16 reorder near-tied boxes), so its raw outputs stay
    as near to fp32 as PyTorch's bf16 fast mode's: under 1e-3 relative."""
    import torch
    from mmengine.dataset import pseudo_collate
    fast_detector, _ = build(own_models, 'openvino', precision='bf16')
    assert fast_detector.loaded.seam.with_head is False
    assert fast_detector.loaded.runtime.startswith('openvino ')
    frame = frames()[0]
    outputs = []
    for service in (detector, fast_detector):
        batch = pseudo_collate([service._pipeline(dict(img=frame, img_id=0))])
        with torch.inference_mode():
            data = service.model.data_preprocessor(batch, False)
            scores, offsets = service.model.bbox_head(
                service.model.extract_feat(data['inputs']))
        outputs.append([t.float().numpy() for t in (*scores, *offsets)])
    for fast, exact in zip(*outputs[::-1]):
        assert np.linalg.norm(fast - exact) / np.linalg.norm(exact) < 1e-3


@pytest.mark.parametrize('ratios, expected', [
    ({'openvino': 1.14, 'onnxruntime': 1.0}, 'pytorch'),
    ({'openvino': 1.2, 'onnxruntime': 1.5}, 'onnxruntime'),
    ({'openvino': MIN_SPEEDUP, 'onnxruntime': 0.5}, 'openvino'),
    ({}, 'pytorch')])
def test_the_decision_takes_only_what_measured_faster(ratios, expected):
    """Fast mode is never slower than PyTorch's own fast mode (itself
    never slower than exact mode: BatchNorm folded), by the probe's
    decision."""
    decided = decide(ratios, {} if ratios else {'openvino': 'boom'})
    assert decided.runtime == expected
    if expected == 'pytorch':
        assert '\n' not in decided.why
        if ratios:
            assert 'OpenVINO measured 1.14x' in decided.why
            assert f'({MIN_SPEEDUP}x needed)' in decided.why
        else:
            assert decided.why == 'OpenVINO: boom'


def test_slower_runtimes_fall_back_with_one_line_and_are_remembered(
        own_models, monkeypatch):
    calls = measured_as(monkeypatch, {'openvino': 0.95, 'onnxruntime': 0.9})
    with pytest.warns(SuiteWarning) as said:
        detector, pose = build(own_models, 'auto', precision='fp32')
    lines = [str(w.message) for w in said if w.category is SuiteWarning]
    assert lines == [
        f'fast mode, {label}: PyTorch runs: OpenVINO measured 0.95x '
        f'PyTorch\'s speed; ONNX Runtime measured 0.90x PyTorch\'s speed '
        f'({MIN_SPEEDUP}x needed)' for label in ('detector', 'pose model')]
    assert calls == [sorted(RUNTIMES)] * 2
    assert detector.loaded.runtime == pose.loaded.runtime == 'pytorch'
    # The next run remembers: nothing measured, nothing converted.
    monkeypatch.setattr(seam, 'export_onnx',
                        lambda *a: pytest.fail('converted again'))
    with pytest.warns(SuiteWarning):
        detector, pose = build(own_models, 'auto', precision='fp32')
    assert calls == [sorted(RUNTIMES)] * 2
    assert not (own_models['det_checkpoint'].parent / 'converted').exists()


def test_faster_but_under_the_margin_is_recorded_not_said(own_models,
                                                          monkeypatch):
    """A runtime faster than PyTorch but under the margin: PyTorch runs,
    no line on every run, and the ratios are in the result's meta."""
    measured_as(monkeypatch, {'openvino': MIN_SPEEDUP - 0.05,
                              'onnxruntime': 1.1})
    with warnings.catch_warnings():
        warnings.simplefilter('error', SuiteWarning)
        detector, _ = build(own_models, 'auto', precision='fp32')
    assert detector.loaded.runtime == 'pytorch'
    from pose_suite.service.meta import runtime_speedups
    assert runtime_speedups(detector.loaded) == {
        'openvino': MIN_SPEEDUP - 0.05, 'onnxruntime': 1.1}


def test_a_faster_runtime_is_used_cached_and_remembered(own_models,
                                                      monkeypatch):
    calls = measured_as(monkeypatch, {'openvino': 1.3, 'onnxruntime': 1.6})
    with warnings.catch_warnings():
        warnings.simplefilter('error', SuiteWarning)
        detector, pose = build(own_models, 'auto', precision='fp32')
    assert detector.loaded.runtime.startswith('onnxruntime ')
    assert pose.loaded.runtime.startswith('onnxruntime ')
    assert detector.loaded.seam.choice.speedups == {'openvino': 1.3,
                                                    'onnxruntime': 1.6}
    folder = own_models['det_checkpoint'].parent / 'converted'
    import onnxruntime
    sha = detector.loaded.checkpoint_sha256[:12]
    stem = own_models['det_checkpoint'].stem
    names = sorted(path.name for path in folder.iterdir())
    assert len(names) == 2  # the winner's files only, one per model
    det_name = [name for name in names if name.startswith(stem)][0]
    assert det_name.startswith(f'{stem}.{sha}.')
    assert det_name.endswith(f'.onnxruntime-{onnxruntime.__version__}.onnx')
    # Remembered and cached: the next build neither measures nor exports.
    monkeypatch.setattr(seam, 'export_onnx',
                        lambda *a: pytest.fail('converted again'))
    again, _ = build(own_models, 'auto', precision='fp32')
    assert again.loaded.runtime == detector.loaded.runtime
    assert calls == [sorted(RUNTIMES)] * 2
    frame = frames()[0]
    np.testing.assert_array_equal(again.detect(frame), detector.detect(frame))


def test_another_machine_setting_measures_again(monkeypatch):
    key = machine_key('x')
    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'AVX2')
    assert machine_key('x') != key
    monkeypatch.delenv('ONEDNN_MAX_CPU_ISA')
    assert machine_key('x') == key and machine_key('y') != key


def test_exact_mode_never_runs_another_runtime(own_models, detector):
    exact, _ = build(own_models, 'openvino', fast=False)
    assert exact.loaded.seam is None and exact.loaded.runtime == 'pytorch'
    from pose_suite.config import build_config
    with pytest.raises(ConfigError, match='runtime openvino runs in fast '
                       'mode only'):
        build_config({'input_path': 'data', 'runtime': 'openvino'})


def test_the_command_line_refuses_a_runtime_for_exact_mode(tmp_path):
    config = tmp_path / 'config.json'
    result = run_cli('creating_config.py', '--config', config, '--runtime',
                     'openvino')
    assert_one_line_error(result, 'runtime openvino', 'fast mode only')
    assert not config.exists()
    assert run_cli('creating_config.py', '--config', config, '--runtime',
                   'openvino', '--precision', 'bf16').returncode == 0
    assert json.loads(config.read_text())['runtime'] == 'openvino'


def test_meta_and_resume_say_what_ran(config_values, write_config, tmp_path):
    """The result records each model's runtime and its measured ratios; a
    result made with another runtime is analysed again, saying so."""
    values = {**config_values, 'precision': 'fp32-fast',
              'runtime': 'openvino', 'resume': True}
    assert run_cli('pose_analysis_service.py', '--config',
                   write_config(values), '--quiet').returncode == 0
    meta = json.loads((tmp_path / 'out' / 'result.json').read_text())['meta']
    for block in (meta['detector'], meta['pose_model']):
        assert block['runtime'].startswith('openvino ')
        assert block['runtime_speedups_measured'] == {}  # forced
    assert meta['precision'] == 'fp32' and meta['precision_asked'] == \
        'fp32-fast'
    done = run_cli('pose_analysis_service.py', '--config', write_config(
        {**values, 'runtime': 'pytorch'}))
    assert done.returncode == 0, done.stderr
    assert 'runtime' in done.stderr
    meta = json.loads((tmp_path / 'out' / 'result.json').read_text())['meta']
    assert meta['detector']['runtime'] == 'pytorch'


def test_capped_isa_decides_by_measurement(model_files, tmp_path):
    """With oneDNN capped to AVX2 (an older CPU; OpenVINO's oneDNN reads
    the cap too, ONNX Runtime's own kernels do not), bf16 asked: fp32 runs,
    and a runtime only where it measured at least the margin."""
    code = (
        'import warnings; warnings.simplefilter("ignore")\n'
        'from pose_suite.models.precision import choose_precision\n'
        'from detection_service import DetectionService\n'
        f'files = {({k: str(v) for k, v in model_files.items()})!r}\n'
        'c = choose_precision("bf16", "cpu")\n'
        'd = DetectionService(files["det_config"], files["det_checkpoint"],'
        ' precision=c.precision, fast=c.fast)\n'
        'import json; print(json.dumps([c.precision, '
        'd.loaded.seam.choice.as_json()]))\n')
    env = {**os.environ, 'ONEDNN_MAX_CPU_ISA': 'AVX2',
           'XDG_CACHE_HOME': str(tmp_path / 'cache')}
    done = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    precision, decided = json.loads(done.stdout.splitlines()[-1])
    assert precision == 'fp32'
    assert set(decided['speedups']) == set(RUNTIMES)
    best = max(decided['speedups'].values())
    assert decided['runtime'] == ('pytorch' if best < MIN_SPEEDUP else max(
        decided['speedups'], key=decided['speedups'].get))


def test_the_probe_times_each_system_alternately():
    calls = []

    def system(name):
        return lambda *args: calls.append(name)

    import torch
    ratios = choice_module.speed_ratios(
        system('pytorch'), {'openvino': system('openvino')},
        torch.zeros(1, 3, 8, 8))
    assert set(ratios) == {'openvino'} and ratios['openvino'] > 0
    assert calls == ['pytorch', 'openvino'] * (1 + choice_module.REPEATS)


def test_the_runtimes_on_the_real_models(real_model_files, real_detector,
                                         real_pose_service, tmp_path):
    """RTMDet-m and HRNet-W48 (random weights). In f32, each runtime
    against exact mode: boxes within 1e-3 px, 99 % of keypoints within
    1e-3 px (PyTorch's fp32 fast mode: 99.4 %; the rest at random-weight
    near-ties), so neither can serve exact mode, whose keypoints equal
    mmpose's. OpenVINO in the precision fast mode chooses here (bf16 where
    this CPU runs it faster): raw box offsets within 0.5 px and class
    probabilities within 0.01 of fp32 (PyTorch's bf16 bounds,
    tests/test_detection_service.py), heatmaps within 1 % (relative L2)."""
    import torch
    from model_factory import copy_model_files
    from mmengine.dataset import pseudo_collate

    from pose_suite.models.precision import choose_precision
    files = copy_model_files(real_model_files, tmp_path / 'models')
    frame = frames()[1]
    boxes = real_detector.detect(frame)
    exact_maps = real_pose_service.heatmaps(frame, boxes)
    exact_people = real_pose_service.extract(frame, boxes)
    for runtime in RUNTIMES:
        detector, pose = build(files, runtime)
        assert pose.loaded.runtime.startswith(f'{runtime} ')
        np.testing.assert_allclose(detector.detect(frame), boxes, atol=1e-3)
        shifts = np.concatenate([
            np.linalg.norm(a['keypoints'] - b['keypoints'], axis=1)
            for a, b in zip(pose.extract(frame, boxes), exact_people)])
        assert np.mean(shifts <= 1e-3) >= 0.99
    chosen = choose_precision('auto', 'cpu').precision
    detector, pose = build(files, 'openvino', precision=chosen)
    error = np.linalg.norm(pose.heatmaps(frame, boxes) - exact_maps) / \
        np.linalg.norm(exact_maps)
    assert error < 0.01
    heads = []
    for service in (real_detector, detector):
        batch = pseudo_collate([service._pipeline(dict(img=frame, img_id=0))])
        with torch.inference_mode():
            data = service.model.data_preprocessor(batch, False)
            heads.append(service.model.bbox_head(
                service.model.extract_feat(data['inputs'])))
    (exact_scores, exact_offsets), (scores, offsets) = heads
    for exact, approximate in zip(exact_offsets, offsets):
        assert (approximate - exact).abs().max() <= 0.5
    for exact, approximate in zip(exact_scores, scores):
        assert (approximate.sigmoid() - exact.sigmoid()).abs().max() <= 0.01


def test_onnx_runtime_competes_in_f32_only():
    from pose_suite.runtimes.choice import candidates
    assert candidates('auto', 'bf16') == ('openvino',)
    assert candidates('auto', 'f32') == ('openvino', 'onnxruntime')
    assert candidates('onnxruntime', 'bf16') == ('onnxruntime',)
    assert candidates('pytorch', 'f32') == ()


def test_the_probe_says_how_many_times_faster(monkeypatch):
    import time

    import torch
    ratios = choice_module.speed_ratios(
        lambda batch: time.sleep(0.02), {'openvino': lambda array: None},
        torch.zeros(1, 3, 8, 8))
    assert ratios['openvino'] > 2


def test_a_remembered_answer_of_the_wrong_kind_is_measured_again():
    from pose_suite.runtimes.choice import RuntimeChoice
    from pose_suite.runtimes.machine import cache_file, remembered
    path = cache_file('t')
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({'k': 'junk', 'other': 3}))
    assert remembered('t', 'k', lambda: 7,
                      lambda known: isinstance(known, int)) == 7
    assert json.loads(path.read_text()) == {'k': 7, 'other': 3}
    path.write_text('{not json')
    assert remembered('t', 'k', lambda: 8, lambda known: True) == 8
    for junk in ({'runtime': 'tensorrt', 'speedups': {}},
                 {'runtime': 'openvino', 'speedups': []}, {'x': 1}, 'x'):
        assert RuntimeChoice.from_json(junk) is None
    assert RuntimeChoice.from_json(
        {'runtime': 'openvino', 'speedups': {'openvino': 1.2}, 'why': None}
    ).runtime == 'openvino'


def test_the_thread_count_is_part_of_the_machine_setting():
    import torch
    threads = torch.get_num_threads()
    key = machine_key('x')
    try:
        torch.set_num_threads(threads + 1)
        assert machine_key('x') != key
    finally:
        torch.set_num_threads(threads)


def test_the_runtimes_setting_names_both_models():
    from pose_suite.service.resume import runtimes_of
    assert runtimes_of('pytorch', 'pytorch') == 'pytorch'
    assert runtimes_of('pytorch', 'openvino 1 f32') != 'pytorch'
    assert runtimes_of('a', 'b') != runtimes_of('b', 'a')


def test_openvino_is_asked_for_the_precision_and_threads(own_models,
                                                        monkeypatch):
    import openvino
    import torch
    asked = []
    real = openvino.Core.compile_model

    class Core(openvino.Core):
        def compile_model(self, model, device, config):
            asked.append(dict(config))
            return real(self, model, device, config)

    monkeypatch.setattr(openvino, 'Core', Core)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        build(own_models, 'openvino', precision='bf16')
    finally:
        torch.set_num_threads(threads)
    assert asked and all(config['INFERENCE_PRECISION_HINT'] == 'bf16' and
                         config['INFERENCE_NUM_THREADS'] == 1
                         for config in asked)


def test_no_runtime_contacts_anything_or_writes_in_the_home(
        config_values, write_config, tmp_path):
    """OpenVINO sends a telemetry event when imported (a DNS query for
    Google Analytics, ``~/intel``) and ONNX Runtime 1.32 sends events to
    Microsoft (``.../Microsoft/DeveloperTools/.onnxruntime``), both unless
    turned off (measured with strace before the fix). A first run of each
    runtime in a new process: no socket but loopback and local ones (where
    strace is at hand), nothing of theirs in the home or the cache."""
    import shutil
    home = tmp_path / 'home'
    home.mkdir()
    env = {**os.environ, 'HOME': str(home),
           'XDG_CACHE_HOME': str(tmp_path / 'xdg')}
    env.pop('ORT_DISABLE_TELEMETRY', None)
    traced = shutil.which('strace')
    for runtime in RUNTIMES:
        config = write_config({**config_values, 'precision': 'fp32-fast',
                               'runtime': runtime})
        trace = tmp_path / f'{runtime}.strace'
        command = [sys.executable, str(ROOT / 'pose_analysis_service.py'),
                   '--config', str(config), '--quiet']
        if traced:
            command = [traced, '-f', '-e', 'trace=connect,sendto', '-o',
                       str(trace), *command]
        done = subprocess.run(command, cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        meta = json.loads((tmp_path / 'out' / 'result.json').read_text())[
            'meta']
        assert meta['detector']['runtime'].startswith(runtime)
        if traced:
            calls = [line for line in trace.read_text().splitlines()
                     if 'sin_addr' in line or 'sin6_addr' in line]
            assert all('127.0.0.1' in line or '::1' in line
                       for line in calls), calls
    assert not (home / 'intel').exists()
    assert not list(tmp_path.rglob('.onnxruntime'))


def test_a_forced_onnx_runtime_in_bf16_says_it_runs_f32(own_models):
    with pytest.warns(SuiteWarning, match='ONNX Runtime runs f32'):
        detector, _ = build(own_models, 'onnxruntime', precision='bf16')
    assert detector.loaded.runtime.endswith(' f32')
