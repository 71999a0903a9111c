"""pose_suite/runtimes: the converted files cached beside the checkpoint
(names, folders, input sizes, damaged, foreign and left-behind files, a
full disk) and the fall-backs to PyTorch's fast mode."""
import os

import numpy as np
import pytest

from pose_suite.errors import SuiteWarning
from pose_suite.runtimes import convert, seam
from runtime_helpers import RUNTIMES, build, frames, measured_as

pytestmark = pytest.mark.usefixtures('own_cache')


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_a_missing_runtime_falls_back_with_one_line(own_models, monkeypatch,
                                                    runtime):
    real = seam.version_of
    monkeypatch.setattr(seam, 'version_of',
                        lambda name: None if name == runtime else real(name))
    with pytest.warns(SuiteWarning) as said:
        detector, _ = build(own_models, runtime)
    names = {'openvino': 'OpenVINO', 'onnxruntime': 'ONNX Runtime'}
    assert [str(w.message) for w in said
            if w.category is SuiteWarning][0] == (
        f'fast mode, detector: PyTorch runs: {names[runtime]}: {runtime} is '
        'not installed')
    assert detector.loaded.runtime == 'pytorch'


def test_a_failed_conversion_falls_back_to_pytorchs_fast_mode(
        own_models, detector, monkeypatch):
    def export(*args):
        raise convert.ConversionError('export to ONNX failed: boom')

    monkeypatch.setattr(seam, 'export_onnx', export)
    with pytest.warns(SuiteWarning, match='PyTorch runs: OpenVINO: export '
                      'to ONNX failed: boom'):
        fast_detector, _ = build(own_models, 'openvino')
    assert fast_detector.loaded.runtime == 'pytorch'
    frame = frames()[0]
    np.testing.assert_allclose(fast_detector.detect(frame),
                               detector.detect(frame), atol=1e-3)


def test_a_damaged_converted_file_is_made_again(own_models):
    detector, _ = build(own_models, 'openvino')
    folder = own_models['det_checkpoint'].parent / 'converted'
    xml = [path for path in folder.glob('*.xml')
           if path.name.startswith(own_models['det_checkpoint'].stem)][0]
    xml.write_text('<net>cut')
    again, _ = build(own_models, 'openvino')
    assert again.loaded.runtime == detector.loaded.runtime
    assert xml.read_text().startswith('<?xml')
    frame = frames()[0]
    np.testing.assert_array_equal(again.detect(frame), detector.detect(frame))


def test_an_unwritable_checkpoint_folder_caches_in_the_home(own_models,
                                                            tmp_path):
    in_the_way = own_models['det_checkpoint'].parent / 'converted'
    in_the_way.write_text('in the way')
    detector, _ = build(own_models, 'onnxruntime')
    assert detector.loaded.runtime.startswith('onnxruntime ')
    cached = list((tmp_path / 'cache' / 'pose-suite' / 'converted').iterdir())
    assert len(cached) == 2 and all(p.suffix == '.onnx' for p in cached)


def test_a_new_input_size_is_converted_or_falls_back(own_models, pose_service,
                                                     monkeypatch):
    """An input of another size (a config whose pipeline makes crops of
    several sizes) gets its own conversion; where that fails, PyTorch's
    fast mode runs from then on, said in one line."""
    import torch
    _, pose = build(own_models, 'openvino')
    height, width = pose.model.cfg.codec['input_size'][::-1]
    other = torch.rand(3, 3, height + 32, width)
    with torch.inference_mode():
        maps = pose.model.head.forward(pose.model.extract_feat(other))
        exact = pose_service.model.head.forward(
            pose_service.model.extract_feat(other))
    assert len(pose.loaded.seam.engines) == 2
    assert float((maps - exact).abs().max()) < 1e-4 * float(
        exact.abs().max())

    def export(*args):
        raise convert.ConversionError('export to ONNX failed: boom')

    monkeypatch.setattr(seam, 'export_onnx', export)
    third = torch.rand(1, 3, height + 64, width)
    with pytest.warns(SuiteWarning, match='pose model: PyTorch runs: '
                      'OpenVINO: export to ONNX failed: boom'):
        with torch.inference_mode():
            features = pose.model.extract_feat(third)  # falls back here
            maps = pose.model.head.forward(features)
            exact = pose_service.model.head.forward(
                pose_service.model.extract_feat(third))
    assert pose.loaded.runtime == 'pytorch'
    assert float((maps - exact).abs().max()) < 1e-4 * float(
        exact.abs().max())


def test_each_input_size_has_its_own_converted_file(own_models):
    import torch
    detector, _ = build(own_models, 'openvino')
    seam_of = detector.loaded.seam
    first = next(iter(seam_of.engines))
    with torch.inference_mode():
        small = seam_of(torch.zeros(1, 3, *first))
        large = seam_of(torch.zeros(1, 3, first[0] + 32, first[1]))
    assert small[0].shape[-2:] != large[0].shape[-2:]
    assert len(seam_of.engines) == 2
    folder = own_models['det_checkpoint'].parent / 'converted'
    names = [p.name for p in folder.glob('*.xml')
             if p.name.startswith(own_models['det_checkpoint'].stem)]
    assert sorted(name.split('.')[3] for name in names) == sorted(
        [f'{first[0]}x{first[1]}', f'{first[0] + 32}x{first[1]}'])


def test_the_detector_head_is_folded_and_its_files_marked_in_bf16(own_models):
    import torch
    detector, _ = build(own_models, 'openvino', precision='bf16')
    batch_norms = [m for m in detector.model.bbox_head.modules()
                   if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert batch_norms == []  # folded, as PyTorch's fast mode does
    folder = own_models['det_checkpoint'].parent / 'converted'
    assert any('.nohead.openvino-' in p.name for p in folder.iterdir())


def test_the_checkpoints_folder_is_looked_in_first(own_models, tmp_path):
    name = 'x.123.8x8.openvino-1.xml'
    checkpoint = own_models['det_checkpoint']
    for folder in convert.cache_folders(checkpoint):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text('x')
    assert convert.find_converted(checkpoint, name) == [
        checkpoint.parent / 'converted' / name,
        tmp_path / 'cache' / 'pose-suite' / 'converted' / name]


def test_openvino_files_are_published_bin_first(tmp_path, monkeypatch):
    """A reader looks for the ``.xml``: it appears last, after its
    ``.bin``, each renamed whole into place."""
    from pose_suite.runtimes import engines
    onnx_path = tmp_path / 'conv.onnx'
    import torch
    with torch.no_grad():
        torch.onnx.export(torch.nn.Conv2d(3, 4, 3), (torch.zeros(1, 3, 8, 8),),
                          str(onnx_path), dynamo=False)
    renamed = []
    real = os.replace
    monkeypatch.setattr(engines.os, 'replace', lambda a, b: (
        renamed.append(os.path.basename(b)), real(a, b)))
    engines.save('openvino', onnx_path, tmp_path / 'out' / 'model.xml')
    assert renamed == ['model.bin', 'model.xml']
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == \
        ['model.bin', 'model.xml']


def test_a_damaged_converted_file_is_removed_even_if_not_rewritten(
        own_models, monkeypatch):
    build(own_models, 'openvino')
    folder = own_models['det_checkpoint'].parent / 'converted'
    xml = [path for path in folder.glob('*.xml')
           if path.name.startswith(own_models['det_checkpoint'].stem)][0]
    xml.write_text('<net>cut')

    def refuse(*args):
        raise OSError('disk full')

    monkeypatch.setattr(seam, 'save', refuse)
    detector, _ = build(own_models, 'openvino')
    assert detector.loaded.runtime.startswith('openvino ')
    assert not xml.exists() and not xml.with_suffix('.bin').exists()


def test_the_fall_back_is_pytorchs_fast_mode(own_models, monkeypatch):
    import torch

    def export(*args):
        raise convert.ConversionError('export to ONNX failed: boom')

    monkeypatch.setattr(seam, 'export_onnx', export)
    with pytest.warns(SuiteWarning):
        detector, _ = build(own_models, 'openvino')
    assert not [m for m in detector.model.modules()
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def test_an_edited_model_config_is_converted_again(own_models, detector):
    """The converted file is the model the config builds: another config
    (here RTMDet with ReLU instead of SiLU) is another file."""
    first, _ = build(own_models, 'openvino')
    config = own_models['det_config']
    config.write_text(config.read_text() + (
        "\nmodel['backbone']['act_cfg'] = dict(type='ReLU')\n"))
    edited, _ = build(own_models, 'openvino')
    assert edited.loaded.config_sha256 != first.loaded.config_sha256
    folder = own_models['det_checkpoint'].parent / 'converted'
    assert len([p for p in folder.glob('*.xml') if p.name.startswith(
        own_models['det_checkpoint'].stem)]) == 2
    exact = type(detector)(config, own_models['det_checkpoint'], bbox_thr=0.0,
                           nms_thr=0.3)
    frame = frames()[0]
    np.testing.assert_allclose(edited.detect(frame), exact.detect(frame),
                               atol=1e-3)


def test_a_full_disk_falls_back_or_runs_uncached(own_models, monkeypatch):
    """Nowhere to save (OpenVINO raises its own RuntimeError on a full
    disk): the runtime runs from memory; no room even for the export: one
    line, PyTorch runs, and the next run tries again."""
    from pose_suite.runtimes import engines

    def full(*args):
        raise RuntimeError('basic_ios::clear: iostream error')

    monkeypatch.setattr(seam, 'save', full)
    detector, _ = build(own_models, 'openvino')
    assert detector.loaded.runtime.startswith('openvino ')
    assert not list((own_models['det_checkpoint'].parent / 'converted').glob(
        '*.xml'))

    def no_room(*args, **kwargs):
        raise OSError(28, 'No space left on device')

    room = seam.TemporaryDirectory
    monkeypatch.setattr(seam, 'TemporaryDirectory', no_room)
    with pytest.warns(SuiteWarning, match='No space left'):
        detector, _ = build(own_models, 'auto')
    assert detector.loaded.runtime == 'pytorch'
    monkeypatch.setattr(seam, 'TemporaryDirectory', room)
    calls = measured_as(monkeypatch, {'openvino': 2.0, 'onnxruntime': 1.0})
    detector, _ = build(own_models, 'auto')  # measured now: failures forgotten
    assert calls and detector.loaded.runtime.startswith('openvino ')
    assert engines  # imported: the module the patches went through


def test_a_foreign_file_at_the_converted_name_falls_back_then_is_remade(
        own_models, detector):
    """The pose model's file where the detector's belongs: it loads but
    cannot run the detector's input. One line, PyTorch runs, the file is
    removed, and the next run converts the right one."""
    build(own_models, 'onnxruntime')
    folder = own_models['det_checkpoint'].parent / 'converted'
    det_file = [p for p in folder.iterdir()
                if p.name.startswith(own_models['det_checkpoint'].stem)][0]
    pose_file = [p for p in folder.iterdir()
                 if p.name.startswith(own_models['pose_checkpoint'].stem)][0]
    det_file.write_bytes(pose_file.read_bytes())
    with pytest.warns(SuiteWarning, match='detector: PyTorch runs: ONNX '
                      'Runtime: inference failed'):
        fast, _ = build(own_models, 'onnxruntime')
    assert fast.loaded.runtime == 'pytorch' and not det_file.exists()
    again, _ = build(own_models, 'onnxruntime')
    assert again.loaded.runtime.startswith('onnxruntime ')
    frame = frames()[0]
    np.testing.assert_allclose(again.detect(frame), detector.detect(frame),
                               atol=1e-3)


def test_what_killed_runs_left_is_swept_after_an_hour(tmp_path):
    import time
    folder = tmp_path / 'converted'
    folder.mkdir()
    old, new = folder / '.x.123.part.bin', folder / '.y.456.part.bin'
    kept = folder / 'x.xml'
    left = tmp_path / f'{convert.TEMPORARY_PREFIX}abc'
    left.mkdir()
    (left / 'heavy.onnx').write_text('x')
    for path in (old, new, kept):
        path.write_text('x')
    hours_ago = time.time() - 2 * convert.LEFT_BEHIND_S
    for path in (old, kept, left):
        os.utime(path, (hours_ago, hours_ago))
    convert.sweep(folder)
    convert.sweep(tmp_path)
    assert not old.exists() and not left.exists()
    assert new.exists() and kept.exists()


def test_a_long_checkpoint_name_still_gives_a_usable_file_name(tmp_path):
    name = convert.converted_name(tmp_path / ('w' * 240 + '.pth'), 'a' * 64,
                                  'b' * 64, (1, 3, 384, 288), 'openvino')
    assert len(name.encode()) < 255 and '.384x288.' in name


