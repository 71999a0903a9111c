"""``make bench``, runtimes: the same models through PyTorch, OpenVINO and
ONNX Runtime on this CPU, whole processes, alternated; then with oneDNN
capped to AVX2 (``ONEDNN_MAX_CPU_ISA``: an older CPU for PyTorch and
OpenVINO, whose CPU kernels are oneDNN's; ONNX Runtime's own kernels do not
read the cap and still use AVX-512 where the CPU has it).

Systems (config keys): exact mode (``precision: fp32``); today's fast mode
(``precision: auto``, ``runtime: pytorch``); OpenVINO and ONNX Runtime in
f32 (``precision: fp32-fast``); OpenVINO in bf16 where the bf16 probe says
this CPU runs bf16 faster; and what fast mode as shipped (``precision:
auto``, ``runtime: auto``) chooses in each setting, read from a result. Two
clips: 12 frames of the 1080p two-person video with 2 persons a frame, and
the 720p football clip (5 frames) with 6. As in ``bench.py``, random-weight
checkpoints whose detector always yields K boxes, frames/s from a long run
less a 1-frame run of the same clip.

Differences against exact mode, in one process on two frames of each clip:
boxes (px), heatmaps (relative L2), keypoints (px). Writes the section
"Runtimes" of benchmarks/RESULTS.md.
"""
import argparse
import json
import os
import statistics
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import (PYTHON, ROOT, TESTDATA, WORK, command,  # noqa: E402
                   machine, replace_section, run, write_clip)
from model_factory import make_model_files  # noqa: E402

from pose_suite.runtimes.choice import MIN_SPEEDUP  # noqa: E402

CAPPED_ISA = 'AVX2'
SYSTEMS = {
    'exact (PyTorch fp32)': {'precision': 'fp32'},
    'fast, PyTorch (today)': {'precision': 'auto', 'runtime': 'pytorch'},
    'fast, OpenVINO f32': {'precision': 'fp32-fast', 'runtime': 'openvino'},
    'fast, ONNX Runtime f32': {'precision': 'fp32-fast',
                               'runtime': 'onnxruntime'},
    'fast, OpenVINO bf16': {'precision': 'bf16', 'runtime': 'openvino'},
}
#: Fast mode as shipped: what the probes choose, read from a result.
AUTO = {'precision': 'auto', 'runtime': 'auto'}
CLIPS = {  # name -> (source, frames, persons a frame)
    '2 persons, 1080p': ('two_people_72frames_1080p.mp4', 12, 2),
    '6 persons, 720p': ('football_5frames_720p.mp4', 5, 6),
}


def bf16_native(capped: bool) -> bool:
    """Whether the bf16 probe chooses bf16 here (in a process of its own,
    with the cap as the runs have it)."""
    code = ('from pose_suite.models.precision import choose_precision; '
            'print(choose_precision("bf16", "cpu").precision)')
    import subprocess
    env = {**os.environ, **({'ONEDNN_MAX_CPU_ISA': CAPPED_ISA}
                            if capped else {})}
    done = subprocess.run([PYTHON, '-c', code], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return done.stdout.split()[-1] == 'bf16'


def config_command(keys: dict, files: dict, video: Path,
                   output: Path) -> list:
    """``bench.command`` for a suite run with ``keys``, quiet."""
    return command('suite', files, video, output,
                   modes={'suite': {**keys, 'quiet': True}})


def measure(systems: dict, clips: dict, repeats: int, capped: bool,
            work: Path) -> dict:
    """name -> clip -> {'fps': [...], 'rss': [...], 'ran': ...}, the
    systems alternated within each repeat."""
    env = {'ONEDNN_MAX_CPU_ISA': CAPPED_ISA} if capped else {}
    results = {name: {clip: {'fps': [], 'rss': []} for clip in clips}
               for name in systems}
    for keys in systems.values():  # untimed: conversions, probes, caches
        for long_clip, short_clip, frames, files in clips.values():
            run(config_command(keys, files, short_clip,
                               work / 'warm-up.json'), env)
    for repeat in range(repeats):
        for index, (name, keys) in enumerate(systems.items()):
            for clip, (long_clip, short_clip, frames, files) in \
                    clips.items():
                folder = work / f'{"capped" if capped else "native"}-{index}'
                folder.mkdir(parents=True, exist_ok=True)
                output = folder / f'{long_clip.stem}.json'
                long_s, rss = run(config_command(keys, files, long_clip,
                                                 output), env)
                short_s, _ = run(config_command(
                    keys, files, short_clip, folder / 'short.json'), env)
                entry = results[name][clip]
                entry['fps'].append((frames - 1) / (long_s - short_s))
                entry['rss'].append(rss)
                meta = json.loads(output.read_text())['meta']
                entry['ran'] = (
                    f"{meta['precision']}; detector "
                    f"{meta['detector'].get('runtime', 'pytorch')}, pose "
                    f"{meta['pose_model'].get('runtime', 'pytorch')}")
                entry['output'] = output
                print(f'  {"capped" if capped else "native"} repeat '
                      f'{repeat + 1}/{repeats} {name}, {clip}: '
                      f'{entry["fps"][-1]:.3f} frames/s ({entry["ran"]})',
                      flush=True)
    return results


def auto_choice(clips: dict, capped: bool, work: Path) -> str:
    """What fast mode as shipped (:data:`AUTO`) runs in this setting, by
    clip, from a 1-frame result's meta."""
    env = {'ONEDNN_MAX_CPU_ISA': CAPPED_ISA} if capped else {}
    said = []
    for clip, (_, short_clip, _, files) in clips.items():
        output = work / 'auto.json'
        run(config_command(AUTO, files, short_clip, output), env)
        meta = json.loads(output.read_text())['meta']
        said.append(f"{clip}: {meta['precision']}, detector "
                    f"{meta['detector']['runtime']}, pose model "
                    f"{meta['pose_model']['runtime']} (measured "
                    f"{meta['detector']['runtime_speedups_measured']} and "
                    f"{meta['pose_model']['runtime_speedups_measured']})")
    return '; '.join(said)


def keypoint_differences(results: dict, exact: str, clip: str) -> dict:
    """name -> (largest box difference px, share of keypoints within 1e-3
    px, largest keypoint difference px) against ``exact``'s result."""
    def read(path):
        frames = json.loads(Path(path).read_text())['frames']
        return [[(np.array(p['bbox'][:4]), np.array(p['keypoints']))
                 for p in f['persons']] for f in frames]

    reference = read(results[exact][clip]['output'])
    differences = {}
    for name, by_clip in results.items():
        boxes, shifts = [0.0], []
        for frame_a, frame_b in zip(read(by_clip[clip]['output']),
                                    reference):
            for (box_a, kpt_a), (box_b, kpt_b) in zip(frame_a, frame_b):
                boxes.append(float(np.abs(box_a - box_b).max()))
                shifts.extend(np.linalg.norm(kpt_a - kpt_b, axis=1))
        shifts = np.array(shifts)
        differences[name] = (max(boxes), float((shifts <= 1e-3).mean()),
                             float(shifts.max()))
    return differences


def heatmap_errors(files: dict, clip: Path, systems: dict) -> dict:
    """name -> largest heatmap relative L2 against exact mode, on the exact
    detector's boxes of two frames, in this process (uncapped)."""
    from detection_service import DetectionService
    from pose_extraction_service import PoseExtractionService

    from pose_suite.models.precision import choose_precision
    detector = DetectionService(files['det_config'], files['det_checkpoint'],
                                bbox_thr=0.0, nms_thr=1.0)
    exact = PoseExtractionService(files['pose_config'],
                                  files['pose_checkpoint'])
    capture = cv2.VideoCapture(str(clip))
    frames = [capture.read()[1] for _ in range(2)]
    boxes = [detector.detect(frame) for frame in frames]
    maps = [exact.heatmaps(f, b) for f, b in zip(frames, boxes)]
    errors = {}
    for name, keys in systems.items():
        if keys['precision'] == 'fp32':
            continue
        choice = choose_precision(keys['precision'], 'cpu')
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            pose = PoseExtractionService(
                files['pose_config'], files['pose_checkpoint'],
                precision=choice.precision, fast=True,
                runtime=keys['runtime'])
        errors[name] = max(
            float(np.linalg.norm(pose.heatmaps(f, b) - m) /
                  np.linalg.norm(m)) for f, b, m in zip(frames, boxes, maps))
    return errors


def render(tables: dict, differences: dict, heatmaps: dict, args,
           native_bf16: bool, autos: dict) -> str:
    lines = ['## Runtimes', '',
             f'`make bench` (benchmarks/bench_runtimes.py), {machine()}. '
             f'{args.repeats} runs of each system, alternated, whole '
             'processes; frames/s from a long run less a 1-frame run of the '
             'same clip (model loading cancels out), median. Random-weight '
             'checkpoints whose detector yields K boxes a frame. Capped: '
             f'`ONEDNN_MAX_CPU_ISA={CAPPED_ISA}` (PyTorch and OpenVINO run '
             'oneDNN as on an AVX2-only CPU; ONNX Runtime does not read the '
             'cap). Differences against exact mode: boxes and keypoints from '
             'the long runs\' results, heatmaps in one process on two '
             'frames of each clip' + (
                 '' if native_bf16 else '; this CPU does not run bf16 '
                 'faster, so no bf16 row') + '.', '']
    clips = list(CLIPS)
    header = ['setting', 'system', 'ran'] + [
        f'frames/s, {clip}' for clip in clips] + [
        f'× exact, {clip}' for clip in clips] + [
        'boxes Δ px', 'keypoints ≤ 1e-3 px', 'keypoints Δ max px',
        'heatmaps rel. L2']
    lines += ['| ' + ' | '.join(header) + ' |',
              '|' + '---|' * len(header)]
    for setting, table in tables.items():
        exact = next(iter(table))
        for name, by_clip in table.items():
            fps = [statistics.median(by_clip[c]['fps']) for c in clips]
            exact_fps = [statistics.median(table[exact][c]['fps'])
                         for c in clips]
            box, within, largest = differences[setting][name]
            heat = heatmaps.get(setting, {}).get(name)
            lines.append('| ' + ' | '.join(
                [setting, name, by_clip[clips[0]]['ran']]
                + [f'{value:.3f}' for value in fps]
                + [f'{value / base:.2f}' for value, base in zip(fps,
                                                                exact_fps)]
                + [f'{box:.2g}', f'{100 * within:.1f} %', f'{largest:.3g}',
                   '' if heat is None else f'{heat:.1e}']) + ' |')
    lines += ['', 'Fast mode as shipped (`precision: auto`, `runtime: auto`) '
              'runs (the probe\'s ratios are the heavy part\'s, OpenVINO or '
              'ONNX Runtime against PyTorch\'s fast mode; a runtime needs '
              f'{MIN_SPEEDUP}×, about 1.15× on a whole run):', '']
    lines += [f'- {setting}: {said}' for setting, said in autos.items()]
    return '\n'.join(lines) + '\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--no-capped', action='store_true',
                        help='leave out the runs with oneDNN capped')
    args = parser.parse_args()
    work = WORK / 'runtimes'
    work.mkdir(parents=True, exist_ok=True)
    print(machine(), flush=True)
    clips = {}
    for name, (source, frames, persons) in CLIPS.items():
        files = make_model_files(work / f'models_k{persons}', persons)
        long_clip = write_clip(TESTDATA / 'videos' / source, frames,
                               work / f'{Path(source).stem}_long.mp4')
        short_clip = write_clip(TESTDATA / 'videos' / source, 1,
                                work / f'{Path(source).stem}_short.mp4')
        clips[name] = (long_clip, short_clip, frames, files)
    native_bf16 = bf16_native(False)
    settings = {'native': {n: k for n, k in SYSTEMS.items()
                           if native_bf16 or 'bf16' not in n}}
    if not args.no_capped:
        settings[f'capped {CAPPED_ISA}'] = {
            n: k for n, k in SYSTEMS.items()
            if 'bf16' not in n or bf16_native(True)}
    tables, differences, heatmaps, autos = {}, {}, {}, {}
    for setting, systems in settings.items():
        tables[setting] = measure(systems, clips, args.repeats,
                                  setting != 'native', work)
        autos[setting] = auto_choice(clips, setting != 'native', work)
        differences[setting] = keypoint_differences(
            tables[setting], next(iter(systems)), next(iter(CLIPS)))
    long_clip, _, _, files = clips[next(iter(CLIPS))]
    heatmaps['native'] = heatmap_errors(files, long_clip, settings['native'])
    section = render(tables, differences, heatmaps, args, native_bf16,
                     autos)
    results = ROOT / 'benchmarks' / 'RESULTS.md'
    text = results.read_text() if results.exists() else ''
    results.write_text(replace_section(text, '## Runtimes', section))
    print(section)


if __name__ == '__main__':
    main()
