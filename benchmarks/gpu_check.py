"""``make gpu-check``: the suite on a CUDA device, checked and timed, in one
command and one table.

1. what the machine is (GPU, torch, CUDA, mmcv's NMS on the device) and
   whether the installed stack is the one the suite needs;
2. the tests marked ``gpu`` (tests/test_gpu.py) on the device;
3. a run on the device against a run on the CPU, same clip: boxes within
   0.5 px and keypoints within 1 px in fp32; the fast precision's errors
   (fp16 on CUDA) reported;
4. this suite (exact and fast) against mmpose's own demo on the same
   device, whole processes alternated, on a clip with at least 4 persons a
   frame; frames/s from the difference between a long and a 1-frame run.

No network: the published weights are used when ``make weights`` put them
in config_files/ (on the real street clip, thresholds 0.3), else the real
configs with random weights and 4 boxes forced per frame, as in the tests.
``--device cpu`` is the dry run for a machine without CUDA: every step runs
on the CPU, bf16 standing in for fp16, with fewer frames. Exit 1 when a
test or a comparison fails. The table also goes to
benchmarks/work/gpu_check.md.
"""
import argparse
import importlib.metadata
import json
import os
import re
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

from bench import (DEMO, PYTHON, ROOT, TESTDATA, command,  # noqa: E402
                   machine, make_model_files, run)

from pose_suite.models.runtime import ensure_torchvision  # noqa: E402

ensure_torchvision()
import torch  # noqa: E402

WORK = BENCHMARKS / 'work' / 'gpu_check'
STREET = TESTDATA / 'videos' / 'street_5frames.mp4'
#: What the suite is built and tested with; another torch works if mmcv was
#: compiled against it (``make install TORCH=system``).
REQUIRED = {'mmcv': '2.1.0', 'mmdet': '3.3.0', 'mmpose': '1.3.2',
            'mmengine': '0.10.7'}
BOX_PX, KEYPOINT_PX = 0.5, 1.0
#: Bound of the fast precision's boxes against the CPU's fp32 (px).
FAST_BOX_PX = 2.0


def environment(device: str) -> list:
    """Lines naming the machine; raises SystemExit on a stack that cannot
    run the suite."""
    from pose_suite.models.device_ops import mmcv_nms_fails_on
    from pose_suite.models.install_mmcv import torch_problem
    problems = [torch_problem()] if torch_problem() else []
    for name, version in REQUIRED.items():
        try:
            found = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found = None
        if found != version:
            problems.append(f'{name} {version} is required, found {found}')
    from pose_suite.models.cuda_driver import check_torch_driver
    driver = check_torch_driver() if device.startswith('cuda') else None
    if driver:
        problems.append(driver)
    elif device.startswith('cuda') and not torch.cuda.is_available():
        problems.append(f'device {device}: torch {torch.__version__} sees no '
                        'CUDA device (a CPU build of torch, or no driver); '
                        'use DEVICE=cpu for the dry run')
    if problems:
        raise SystemExit('error: ' + '; '.join(problems))
    if device.startswith('cuda'):
        props = torch.cuda.get_device_properties(device)
        what = (f'{props.name}, {props.total_memory / 2**30:.0f} GiB, '
                f'compute capability {props.major}.{props.minor}, CUDA '
                f'{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}')
    else:
        what = f'dry run on the CPU: {machine()}'
    why = mmcv_nms_fails_on(device)
    return [f'device: {device} ({what})',
            f'torch {torch.__version__}, mmcv {REQUIRED["mmcv"]}: its NMS on '
            f'{device}: ' + ('yes' if why is None else
                             f'no ({why}); the suite runs NMS on the CPU')]


def run_gpu_tests(device: str) -> tuple:
    """pytest -m gpu on the device: (passed, failed, skipped, summary)."""
    done = subprocess.run(
        [PYTHON, '-m', 'pytest', '-m', 'gpu', '-rs', '-q', '-p',
         'no:cacheprovider', str(ROOT / 'tests' / 'test_gpu.py')],
        cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, 'POSE_SUITE_GPU_DEVICE': device})
    summary = (done.stdout.strip().splitlines() or ['(no output)'])[-1]
    counts = {word: int(number) for number, word in
              re.findall(r'(\d+) (passed|failed|skipped|error)', summary)}
    if done.returncode not in (0, 5):
        print(done.stdout[-4000:], done.stderr[-2000:], sep='\n')
    return (counts.get('passed', 0),
            counts.get('failed', 0) + counts.get('error', 0),
            counts.get('skipped', 0), summary.strip('= '))


def model_files(persons: int) -> tuple:
    """(files, label, thresholds): the published weights if they are in
    config_files/, else random weights with ``persons`` boxes forced."""
    from pose_suite.config.keys import (DET_CHECKPOINT, DET_CONFIG,
                                        POSE_CHECKPOINT, POSE_CONFIG)
    from pose_suite.models.checkpoints import expected_sha256_prefix, sha256_of
    published = {'det_config': ROOT / DET_CONFIG,
                 'det_checkpoint': ROOT / DET_CHECKPOINT,
                 'pose_config': ROOT / POSE_CONFIG,
                 'pose_checkpoint': ROOT / POSE_CHECKPOINT}
    if all(path.is_file() for path in published.values()) and all(
            sha256_of(published[k]).startswith(
                expected_sha256_prefix(published[k]))
            for k in ('det_checkpoint', 'pose_checkpoint')):
        return published, 'published weights', (0.3, 0.3)
    with warnings.catch_warnings():  # the libraries', about building them
        warnings.simplefilter('ignore')
        files = make_model_files(WORK / f'models_k{persons}', persons)
    return files, f'random weights, {persons} boxes forced a frame', \
        (0.0, 1.0)


def write_clip(frames: int, target: Path) -> Path:
    """``frames`` frames of the real street clip (about 15 pedestrians),
    played forth and back as often as needed."""
    capture = cv2.VideoCapture(str(STREET))
    source = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        source.append(frame)
    order = source + source[-2:0:-1]
    height, width = source[0].shape[:2]
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*'mp4v'),
                             capture.get(cv2.CAP_PROP_FPS) or 5.0,
                             (width, height))
    for index in range(frames):
        writer.write(order[index % len(order)])
    writer.release()
    return target


def persons_of(path: Path) -> list:
    """[frame] -> [(bbox (4,), keypoints (K, 2))] from a suite result."""
    frames = json.loads(path.read_text())['frames']
    return [[(np.array(p['bbox']), np.array(p['keypoints']))
             for p in frame['persons']] for frame in frames]


def differences(reference: list, other: list) -> dict:
    """Largest box and keypoint distances (px) between two runs, each
    person matched to the nearest box; ``unmatched``: persons in one run
    without a counterpart in the other."""
    boxes, keypoints, shifts, unmatched = [0.0], [0.0], [], 0
    for ref_frame, frame in zip(reference, other):
        unmatched += abs(len(ref_frame) - len(frame))
        for box, points in ref_frame:
            if not frame:
                continue
            nearest = min(frame, key=lambda p: np.abs(p[0] - box).max())
            boxes.append(float(np.abs(nearest[0] - box).max()))
            keypoints.append(float(np.abs(nearest[1] - points).max()))
            shifts.extend(np.linalg.norm(nearest[1] - points, axis=1))
    return {'box': max(boxes), 'keypoint': max(keypoints),
            'shift_median': float(np.median(shifts)) if shifts else 0.0,
            'unmatched': unmatched}


def compare_with_cpu(files, thresholds, device, fast, clip) -> dict:
    """Runs of the CLI: CPU fp32 against the device in fp32 and in the fast
    precision."""
    modes = {'cpu': {'precision': 'fp32'}, 'exact': {'precision': 'fp32'},
             'fast': {'precision': fast}}
    results = {}
    for name in modes:
        output = WORK / 'compare' / f'{name}.json'
        output.parent.mkdir(parents=True, exist_ok=True)
        run(command(name, files, clip, output,
                    device='cpu' if name == 'cpu' else device, modes=modes,
                    thresholds=thresholds))
        results[name] = persons_of(output)
    return {name: differences(results['cpu'], results[name])
            for name in ('exact', 'fast')}


def time_systems(files, thresholds, device, fast, frames, repeats) -> dict:
    """name -> {'fps': [...], 'long_s': [...]}, or {'error': text}."""
    long_clip = write_clip(frames, WORK / 'clip_long.mp4')
    short_clip = write_clip(1, WORK / 'clip_short.mp4')
    modes = {'suite, exact (fp32)': {'precision': 'fp32'},
             f'suite, fast ({fast})': {'precision': fast}}
    results = {name: {'fps': [], 'long_s': []} for name in [*modes, DEMO]}
    for repeat in range(repeats):
        for index, name in enumerate(results):
            if 'error' in results[name]:
                continue
            folder = WORK / 'timing' / str(index)
            folder.mkdir(parents=True, exist_ok=True)
            try:
                long_s = run(command(name, files, long_clip,
                                     folder / 'long.json', device, modes,
                                     thresholds))[0]
                short_s = run(command(name, files, short_clip,
                                      folder / 'short.json', device, modes,
                                      thresholds))[0]
            except RuntimeError as exc:  # the demo without CUDA NMS, say
                lines = [line for line in str(exc).splitlines() if line]
                results[name] = {'error': lines[-1][:200] if lines else '?'}
                continue
            results[name]['fps'].append((frames - 1) / (long_s - short_s))
            results[name]['long_s'].append(long_s)
            print(f'  repeat {repeat + 1}/{repeats} {name}: '
                  f'{results[name]["fps"][-1]:.2f} frames/s', flush=True)
    return results


def row_verdicts(tests, compared) -> dict:
    """Each bounded row of the table: True where it passed. The fast
    precision's keypoints are only reported (heatmap near-ties may move a
    keypoint far); its boxes are bounded: the detector's heads run in fp32
    (pose_suite.models.build.use_fast_mode), so only the backbone's
    rounding moves them."""
    passed, failed = tests[0], tests[1]
    exact, quick = compared['exact'], compared['fast']
    return {
        'tests': failed == 0 and passed > 0,
        'exact boxes': exact['box'] <= BOX_PX and exact['unmatched'] == 0,
        'exact keypoints': exact['keypoint'] <= KEYPOINT_PX,
        'fast boxes': quick['box'] <= FAST_BOX_PX and quick['unmatched'] == 0,
    }


def render(lines, tests, label, persons, compared, timed, frames, fast,
           elapsed) -> tuple:
    """The table (markdown) and whether everything passed."""
    passed, failed, skipped, summary = tests
    exact, quick = compared['exact'], compared['fast']
    verdict = row_verdicts(tests, compared)
    ok = all(verdict.values())

    def said(name):
        return 'pass' if verdict[name] else 'FAIL'

    rows = ['# make gpu-check', '', *[f'- {line}' for line in lines],
            f'- models: {label}; clip: the real street clip '
            f'(`videos/street_5frames.mp4`, 960×540) played back and forth '
            f'to {frames} frames, at least {persons} persons a frame',
            f'- total time of the check: {elapsed / 60:.1f} min (limit 8)',
            '', '| check | result | verdict |', '|---|---|---|',
            f'| tests marked gpu | {summary} | {said("tests")} |',
            f'| device fp32 vs CPU fp32: boxes | {exact["box"]:.3f} px max '
            f'(≤ {BOX_PX}), {exact["unmatched"]} unmatched | '
            f'{said("exact boxes")} |',
            f'| device fp32 vs CPU fp32: keypoints | {exact["keypoint"]:.3f} '
            f'px max (≤ {KEYPOINT_PX}), median shift '
            f'{exact["shift_median"]:.4f} px | {said("exact keypoints")} |',
            f'| device {fast} vs CPU fp32: boxes | {quick["box"]:.3f} px max '
            f'(≤ {FAST_BOX_PX}), {quick["unmatched"]} unmatched | '
            f'{said("fast boxes")} |',
            f'| device {fast} vs CPU fp32: keypoints | '
            f'{quick["keypoint"]:.3f} px max, median shift '
            f'{quick["shift_median"]:.4f} px | reported |']
    demo = timed.get(DEMO, {})
    demo_fps = statistics.median(demo['fps']) if demo.get('fps') else None
    for name, result in timed.items():
        if 'error' in result:
            rows.append(f'| {name}: speed | fails: {result["error"]} | |')
            continue
        fps = statistics.median(result['fps'])
        versus = f', {fps / demo_fps:.2f}× the demo' \
            if demo_fps and name != DEMO else ''
        rows.append(f'| {name}: speed | {fps:.2f} frames/s, '
                    f'{fps * persons:.1f} persons/s{versus}; whole process '
                    f'{statistics.median(result["long_s"]):.1f} s | |')
    return '\n'.join(rows) + '\n', ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--frames', type=int,
                        help='frames in the timed clip (60 on CUDA, 2 in '
                             'the dry run)')
    parser.add_argument('--repeats', type=int,
                        help='alternated repeats (2 on CUDA, 1 dry)')
    parser.add_argument('--persons', type=int, default=4,
                        help='boxes forced a frame with random weights')
    args = parser.parse_args()
    started = time.perf_counter()
    dry = not args.device.startswith('cuda')
    frames = args.frames or (2 if dry else 60)
    repeats = args.repeats or (1 if dry else 2)
    fast = 'bf16' if dry else 'fp16'
    WORK.mkdir(parents=True, exist_ok=True)
    lines = environment(args.device)
    print('\n'.join(lines), flush=True)
    print('tests marked gpu ...', flush=True)
    tests = run_gpu_tests(args.device)
    print(f'  {tests[3]}', flush=True)
    files, label, thresholds = model_files(args.persons)
    print(f'device against CPU ({label}) ...', flush=True)
    compared = compare_with_cpu(files, thresholds, args.device, fast,
                                write_clip(2, WORK / 'clip_compare.mp4'))
    print('speed: suite against the mmpose demo ...', flush=True)
    timed = time_systems(files, thresholds, args.device, fast, frames,
                         repeats)
    table, ok = render(lines, tests, label, args.persons, compared, timed,
                       frames, fast, time.perf_counter() - started)
    (WORK.parent / 'gpu_check.md').write_text(table)
    print(table)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
