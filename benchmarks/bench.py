"""``make bench``: this suite against mmpose's own pipeline, same models,
same machine, same work.

Systems, each run as its own process, alternating, ``--repeats`` times:
  (a) this suite's CLI: exact mode (fp32), fast mode (bf16), video mode
      (detector every 3rd frame) and exact mode with ``flip_test: false``;
  (b) mmpose's shipped demo ``topdown_demo_with_mmdet.py --save-predictions``;
  (c) a plain loop over ``inference_detector`` + ``inference_topdown``
      (benchmarks/plain_loop.py), the reference for keypoint differences.

The checkpoints are the real configs with random weights, as in the tests,
with the detector's ``test_cfg`` set to ``score_thr=0, max_per_img=K`` and
every system run with ``bbox_thr=0, nms_thr=1`` so that each frame carries
exactly K persons everywhere. Frames/s come from the difference between a
long and a 1-frame run of the same video, so model loading cancels out;
start-up is the 1-frame run less one frame. Writes benchmarks/RESULTS.md
(keeping the section ``make bench-scale`` writes).
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tests'))
sys.path.insert(0, str(ROOT))

from model_factory import make_model_files  # noqa: E402

TESTDATA = Path(os.environ.get('POSE_SUITE_TESTDATA',
                               ROOT.parent / 'shared' / 'testdata'))
WORK = ROOT / 'benchmarks' / 'work'
PYTHON = sys.executable
SUITE_MODES = {  # system name -> config.json keys
    '(a) suite, exact (fp32)': {'precision': 'fp32'},
    '(a) suite, fast (bf16)': {'precision': 'bf16'},
    '(a) suite, auto': {'precision': 'auto'},
    '(a) suite, video mode (detect every 3rd frame, fp32)': {
        'precision': 'fp32', 'det_interval': 3},
    '(a) suite, flip_test off (fp32)': {
        'precision': 'fp32', 'flip_test': False},
}
DEMO = '(b) mmpose demo'
PLAIN = '(c) plain mmdet + mmpose loop'
#: oneDNN held to a CPU without bf16 instructions (as Intel before Cooper
#: Lake, AMD before Zen 4): the systems run again so, marked CAPPED.
CAPPED_ISA = 'AVX512_CORE_VNNI'
CAPPED = ', ISA capped'
CAPPED_SYSTEMS = ['(a) suite, exact (fp32)', '(a) suite, fast (bf16)',
                  '(a) suite, auto', PLAIN]


def capped(name: str) -> str:
    return name + CAPPED


def uncapped(name: str) -> str:
    return name[:-len(CAPPED)] if name.endswith(CAPPED) else name


def write_clip(source: Path, frames: int, target: Path,
               start: int = 0) -> Path:
    """``frames`` frames of a real video from frame ``start``, as mp4."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS)
    for _ in range(start):
        capture.read()
    writer = None
    for _ in range(frames):
        ok, frame = capture.read()
        assert ok, f'{source} has fewer than {frames} frames'
        if writer is None:
            height, width = frame.shape[:2]
            writer = cv2.VideoWriter(str(target),
                                     cv2.VideoWriter_fourcc(*'mp4v'), fps,
                                     (width, height))
        writer.write(frame)
    writer.release()
    return target


def run(command, env: dict = None) -> tuple:
    """Run a command (``env``: variables added); returns (wall seconds,
    peak RSS in MB)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, cwd=ROOT,
                               env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode(errors='replace')
    process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f'{command[1]} failed:\n{stderr[-2000:]}')
    return seconds, usage.ru_maxrss / 1024


def command(system: str, files: dict, video: Path, output: Path,
            device: str = 'cpu', modes: dict = SUITE_MODES,
            thresholds: tuple = (0.0, 1.0)) -> list:
    """The command line of one system; ``modes``: suite system name ->
    config keys; ``thresholds``: (bbox_thr, nms_thr) for every system."""
    bbox_thr, nms_thr = thresholds
    system = uncapped(system)
    if system in modes:
        config = output.with_suffix('.config.json')
        config.write_text(json.dumps({
            'det_config': str(files['det_config']),
            'det_checkpoint': str(files['det_checkpoint']),
            'pose_config': str(files['pose_config']),
            'pose_checkpoint': str(files['pose_checkpoint']),
            'input': str(video), 'output': str(output), 'device': device,
            'bbox_thr': bbox_thr, 'nms_thr': nms_thr, **modes[system]}))
        return [PYTHON, str(ROOT / 'pose_analysis_service.py'), '--config',
                str(config)]
    models = [str(files[k]) for k in ('det_config', 'det_checkpoint',
                                      'pose_config', 'pose_checkpoint')]
    if system == DEMO:
        return [PYTHON, str(ROOT / 'benchmarks' / 'mmpose_demo.py'), *models,
                '--input', str(video), '--output-root', str(output.parent),
                '--save-predictions', '--device', device, '--bbox-thr',
                str(bbox_thr), '--nms-thr', str(nms_thr)]
    return [PYTHON, str(ROOT / 'benchmarks' / 'plain_loop.py'), *models,
            str(video), str(output), '--bbox-thr', str(bbox_thr),
            '--nms-thr', str(nms_thr)]


def read_keypoints(system: str, video: Path, output: Path) -> list:
    """[frame][person] -> (133, 2) array, from each system's own output."""
    if uncapped(system) == DEMO:
        data = json.loads((output.parent / f'results_{video.stem}.json')
                          .read_text())
        return [[np.array(p['keypoints']) for p in frame['instances']]
                for frame in data['instance_info']]
    frames = json.loads(output.read_text())['frames']
    return [[np.array(p['keypoints']) for p in f['persons']] for f in frames]


def max_difference(ours: list, reference: list) -> float:
    """Largest keypoint distance (px) between two systems' outputs."""
    assert len(ours) == len(reference)
    worst = 0.0
    for frame_a, frame_b in zip(ours, reference):
        assert len(frame_a) == len(frame_b)
        for a, b in zip(frame_a, frame_b):
            worst = max(worst, float(np.abs(a - b).max()))
    return worst


def measure_systems(files, long_clip, short_clip, frames, repeats, work):
    """Alternate the systems; returns name -> measurements."""
    systems = [*SUITE_MODES, DEMO, PLAIN,
               *[capped(name) for name in CAPPED_SYSTEMS]]
    results = {name: {'fps': [], 'rss': [], 'long_s': [], 'short_s': []}
               for name in systems}
    outputs = {}
    for repeat in range(repeats):
        for index, name in enumerate(systems):
            folder = work / f'{index}'
            folder.mkdir(parents=True, exist_ok=True)
            output = folder / 'long.json'
            env = {'ONEDNN_MAX_CPU_ISA': CAPPED_ISA} \
                if name.endswith(CAPPED) else {}
            long_s, rss = run(command(name, files, long_clip, output), env)
            short_s, _ = run(command(name, files, short_clip,
                                     folder / 'short.json'), env)
            results[name]['fps'].append((frames - 1) / (long_s - short_s))
            results[name]['rss'].append(rss)
            results[name]['long_s'].append(long_s)
            results[name]['short_s'].append(short_s)
            outputs[name] = read_keypoints(name, long_clip, output)
            results[name]['ran'] = json.loads(output.read_text())['meta'][
                'precision'] if uncapped(name) in SUITE_MODES else 'fp32'
            print(f'  repeat {repeat + 1}/{repeats} {name}: '
                  f'{results[name]["fps"][-1]:.3f} frames/s, {rss:.0f} MB',
                  flush=True)
    for name in systems:
        results[name]['max_diff'] = max_difference(outputs[name],
                                                   outputs[PLAIN])
    return results


def keypoint_shift_percentiles(files, clip) -> dict:
    """Fast mode against exact mode on the same boxes: heatmap relative
    error and keypoint shift percentiles."""
    from detection_service import DetectionService
    from pose_extraction_service import PoseExtractionService
    detector = DetectionService(files['det_config'], files['det_checkpoint'],
                                bbox_thr=0.0, nms_thr=1.0)
    exact = PoseExtractionService(files['pose_config'],
                                  files['pose_checkpoint'])
    fast = PoseExtractionService(files['pose_config'],
                                 files['pose_checkpoint'], precision='bf16')
    capture = cv2.VideoCapture(str(clip))
    errors, shifts = [], []
    for _ in range(2):
        ok, frame = capture.read()
        boxes = detector.detect(frame)
        h32, h16 = exact.heatmaps(frame, boxes), fast.heatmaps(frame, boxes)
        errors.append(np.linalg.norm(h16 - h32) / np.linalg.norm(h32))
        for a, b in zip(exact.extract(frame, boxes),
                        fast.extract(frame, boxes)):
            shifts.extend(np.linalg.norm(a['keypoints'] - b['keypoints'],
                                         axis=1))
    shifts = np.array(shifts)
    return {'heatmap_error': float(max(errors)),
            'shift_p50': float(np.percentile(shifts, 50)),
            'shift_p90': float(np.percentile(shifts, 90)),
            'shift_max': float(shifts.max()),
            'within_1px': float((shifts <= 1.0).mean())}


class _Network(torch.nn.Module):
    """Backbone, neck and head as one tensor-to-tensor module, to count."""

    def __init__(self, model, head):
        super().__init__()
        self.model, self.head = model, head

    def forward(self, inputs):
        return self.head.forward(self.model.extract_feat(inputs))


def compute_floor(files) -> dict:
    """Multiply-accumulates of both models (mmengine's counter on the real
    graph) and this machine's measured convolution throughput."""
    from mmengine.analysis import get_model_complexity_info

    from detection_service import DetectionService
    from pose_extraction_service import PoseExtractionService
    detector = DetectionService(files['det_config'], files['det_checkpoint'])
    pose = PoseExtractionService(files['pose_config'],
                                 files['pose_checkpoint'])
    det_macs = get_model_complexity_info(
        _Network(detector.model, detector.model.bbox_head),
        inputs=(torch.zeros(1, 3, 640, 640),), show_table=False,
        show_arch=False)['flops']
    pose_macs = get_model_complexity_info(
        _Network(pose.model, pose.model.head),
        inputs=(torch.zeros(1, 3, 384, 288),), show_table=False,
        show_arch=False)['flops']
    conv = torch.nn.Conv2d(96, 96, 3, padding=1).eval()
    x = torch.randn(8, 96, 96, 72)
    macs = 8 * 96 * 96 * 9 * 96 * 72
    throughput = {}
    with torch.inference_mode():
        for name, dtype in (('fp32', None), ('bf16', torch.bfloat16)):
            timings = []
            for _ in range(6):
                started = time.perf_counter()
                if dtype is None:
                    conv(x)
                else:
                    with torch.autocast('cpu', dtype=dtype):
                        conv(x)
                timings.append(time.perf_counter() - started)
            throughput[name] = macs / min(timings[1:])
    return {'det_macs': det_macs, 'pose_macs': pose_macs,
            'throughput': throughput}


def memory_growth(files, work) -> dict:
    """Peak RSS of the suite on 5 frames and on 168 frames of a real video."""
    source = TESTDATA / 'videos' / 'no_person_168frames.mp4'
    short = write_clip(source, 5, work / 'five.mp4')
    peaks = {}
    for name, video in (('5 frames', short), ('168 frames', source)):
        cmd = command('(a) suite, fast (bf16)', files, video,
                      work / f'memory_{video.stem}.json')
        peaks[name] = run(cmd)[1]
    return peaks


def machine() -> str:
    model = 'unknown CPU'
    flags = set()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
            if line.startswith('flags'):
                flags = set(line.split(':', 1)[1].split())
    except OSError:
        pass
    extras = ', '.join(f for f in ('avx512f', 'avx512_bf16', 'amx_bf16')
                       if f in flags) or 'no AVX-512'
    gpu = 'with CUDA' if torch.cuda.is_available() else 'no GPU'
    return (f'{model}, {os.cpu_count()} cores ({extras}), '
            f'{os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30:.0f} GiB; '
            f'Python {platform.python_version()}, torch {torch.__version__} '
            f'({torch.get_num_threads()} threads), {gpu}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--frames', type=int, default=12,
                        help='frames in the long clip')
    parser.add_argument('--persons', type=int, nargs='+', default=[2])
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    probe = probe_ratios()
    print(f'{machine()}\nprecision probe, bf16 against fp32: ' + ', '.join(
        f'{ratio:.2f}× {label}' for label, ratio in probe.items()),
        flush=True)
    source = TESTDATA / 'videos' / 'two_people_72frames_1080p.mp4'
    long_clip = write_clip(source, args.frames, WORK / 'clip_long.mp4')
    short_clip = write_clip(source, 1, WORK / 'clip_short.mp4')
    tables, files_by_k = {}, {}
    for persons in args.persons:
        print(f'K = {persons} persons per frame', flush=True)
        files = make_model_files(WORK / f'models_k{persons}', persons)
        files_by_k[persons] = files
        tables[persons] = measure_systems(files, long_clip, short_clip,
                                          args.frames, args.repeats,
                                          WORK / f'runs_k{persons}')
    print('fast mode accuracy, compute floor, memory', flush=True)
    files = files_by_k[max(args.persons)]
    accuracy = keypoint_shift_percentiles(files, long_clip)
    floor = compute_floor(files)
    memory = memory_growth(files_by_k[min(args.persons)], WORK)
    report = render(tables, accuracy, floor, memory, args, probe)
    results = ROOT / 'benchmarks' / 'RESULTS.md'
    results.write_text(report + _kept_sections(results))
    print(report)


def replace_section(text: str, heading: str, section: str) -> str:
    """``text`` with its ``heading`` section (up to the next heading of the
    same level) replaced by ``section``, or ``section`` appended."""
    level = heading.split(' ', 1)[0] + ' '
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines)
                  if line.rstrip('\n') == heading), None)
    if start is None:
        return text.rstrip('\n') + ('\n\n' if text else '') + section
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith(level)), len(lines))
    return ''.join(lines[:start]) + section + \
        ('\n' + ''.join(lines[end:]) if end < len(lines) else '')


def _kept_sections(results: Path) -> str:
    """What other benchmarks wrote into RESULTS.md (``make bench-scale``'s
    and ``bench_runtimes.py``'s sections), to keep when this one rewrites
    it."""
    if not results.exists():
        return ''
    text = results.read_text()
    starts = [text.find(heading) for heading in ('\n## Many videos',
                                                  '\n## Runtimes')]
    starts = [start for start in starts if start >= 0]
    return text[min(starts):] if starts else ''


def _ceiling(floor, persons, precision, plain_fps) -> float:
    """Floor frames/s (full-frame detection, flip test) over (c)'s."""
    macs = floor['det_macs'] + persons * 2 * floor['pose_macs']
    return floor['throughput'][precision] / macs / plain_fps


def probe_ratios() -> dict:
    """The precision probe's bf16/fp32 ratio, uncapped and capped (oneDNN
    reads the cap at start: each in its own process)."""
    ratios = {}
    for label, env in (('uncapped', {}),
                       (f'capped to {CAPPED_ISA}',
                        {'ONEDNN_MAX_CPU_ISA': CAPPED_ISA})):
        done = subprocess.run(
            [PYTHON, '-c', 'from pose_suite.models.precision import '
             'measure_bf16_speedup as m; print(m())'], cwd=ROOT, check=True,
            capture_output=True, text=True, env={**os.environ, **env})
        ratios[label] = float(done.stdout)
    return ratios


def render(tables, accuracy, floor, memory, args, probe) -> str:
    probes = ', '.join(f'{ratio:.2f}× {label}'
                       for label, ratio in probe.items())
    lines = [
        '# Benchmark results', '',
        f'Written by `make bench` on {datetime.date.today()}: '
        f'{machine()}.', '',
        f'Input: the first {args.frames} frames of '
        '`videos/two_people_72frames_1080p.mp4` (1920×1080, real), K person '
        'boxes forced per frame in every system. Frames/s from the '
        f'difference between a {args.frames}-frame and a 1-frame run '
        f'(model loading cancels out), {args.repeats} alternating repeats: '
        'median (min–max). Whole ×(c): wall time of (c)\'s whole process '
        f'over this one\'s on the {args.frames}-frame clip, start-up '
        'included. Start-up: the 1-frame run\'s wall time less one frame '
        '(imports, models, opening the input, writing). Δkp: largest '
        'keypoint difference from (c), in pixels. Floor: frames/s if every '
        'multiply-accumulate ran at the measured convolution throughput of '
        'this CPU in the same precision.',
        '',
        f'Rows marked "ISA capped" ran with `ONEDNN_MAX_CPU_ISA={CAPPED_ISA}`'
        ' (oneDNN as on a CPU without bf16 instructions); their whole ×(c) '
        'is against (c) capped too. "ran": the precision the run used '
        '(`meta.precision`). Precision probe (`pose_suite.models.precision`, bf16 '
        f'against fp32 convolution speed): {probes}.',
        '',
        '| system | K | ran | frames/s | s/person | whole ×(c) | start-up s '
        '| peak RSS MB | Δkp vs (c) px | % of floor |',
        '|---|---|---|---|---|---|---|---|---|---|']
    ceilings = []
    for persons, results in tables.items():
        plain_fps = statistics.median(results[PLAIN]['fps'])
        for name, result in results.items():
            fps = statistics.median(result['fps'])
            # Whole ×(c) against the plain loop under the same ISA cap.
            plain = PLAIN + (CAPPED if name.endswith(CAPPED) else '')
            plain_long = statistics.median(results[plain]['long_s'])
            passes = 1 if 'flip_test off' in name else 2  # flip test: 2
            detections = 1 / 3 if 'video mode' in name else 1
            floor_fps = floor['throughput'][result['ran']] / (
                floor['det_macs'] * detections +
                persons * passes * floor['pose_macs'])
            start_up = statistics.median(result['short_s']) - 1 / fps
            lines.append(
                f'| {name} | {persons} | {result["ran"]} | {fps:.3f} '
                f'({min(result["fps"]):.3f}–{max(result["fps"]):.3f}) | '
                f'{1 / (fps * persons):.3f} | '
                f'{plain_long / statistics.median(result["long_s"]):.2f} | '
                f'{start_up:.1f} | '
                f'{statistics.median(result["rss"]):.0f} | '
                f'{result["max_diff"]:.4f} | ' +
                ('— |' if name.endswith(CAPPED)
                 else f'{100 * fps / floor_fps:.0f} % |'))

        def ratio(name, over):
            return statistics.median(results[name]['fps']) / \
                statistics.median(results[over]['fps'])

        exact = '(a) suite, exact (fp32)'
        lines.append(
            f'| *speed-ups, K={persons}* | | | exact: '
            f'{ratio(exact, PLAIN):.2f}× (c), {ratio(exact, DEMO):.2f}× (b);'
            f' fast: {ratio("(a) suite, fast (bf16)", PLAIN):.2f}× (c); '
            f'auto: {ratio("(a) suite, auto", PLAIN):.2f}× (c) | | | | | | |')
        lines.append(
            f'| *ISA capped, K={persons}* | | | exact: '
            f'{ratio(capped(exact), capped(PLAIN)):.2f}× (c); fast: '
            f'{ratio(capped("(a) suite, fast (bf16)"), capped(PLAIN)):.2f}× '
            f'(c), {ratio(capped("(a) suite, fast (bf16)"), capped(exact)):.2f}'
            f'× exact; auto: '
            f'{ratio(capped("(a) suite, auto"), capped(exact)):.2f}× exact '
            '| | | | | | |')
        ceilings.append(
            f'- K={persons}: the floor is {_ceiling(floor, persons, "fp32", plain_fps):.2f}× '
            f'(c) in fp32 and {_ceiling(floor, persons, "bf16", plain_fps):.2f}× (c) '
            'in bf16: no system doing this work in that precision on this '
            'CPU can be faster than that.')
    lines += [
        '', '## Fast mode (bf16) against exact mode, same boxes', '',
        f'- pose heatmaps: relative L2 error {100 * accuracy["heatmap_error"]:.2f} % '
        '(target ≤ 1 %)',
        f'- keypoint shift: median {accuracy["shift_p50"]:.3f} px, 90th '
        f'percentile {accuracy["shift_p90"]:.3f} px, largest '
        f'{accuracy["shift_max"]:.1f} px; {100 * accuracy["within_1px"]:.1f} % '
        'of keypoints within 1 px. The weights are random, so heatmaps are '
        'flatter than a trained model\'s and near-equal peaks can swap: the '
        'largest shifts overstate what trained weights would show.',
        '', '## Compute floor', '',
        f'- RTMDet-m at 640×640: {floor["det_macs"] / 1e9:.1f} GMAC; '
        f'HRNet-W48 at 384×288: {floor["pose_macs"] / 1e9:.1f} GMAC per '
        'pass (two passes per person with flip test)',
        f'- measured 3×3 convolution throughput: '
        f'{floor["throughput"]["fp32"] / 1e9:.0f} GMAC/s fp32, '
        f'{floor["throughput"]["bf16"] / 1e9:.0f} GMAC/s bf16',
        '- the most any system could gain over (c), at 100 % of the floor:',
        *ceilings,
        '', '## Memory', '',
        f'- suite (fast mode, K={min(args.persons)}), peak RSS: '
        + ', '.join(f'{k}: {v:.0f} MB' for k, v in memory.items())
        + f' (ratio {memory["168 frames"] / memory["5 frames"]:.3f}; '
        'target ≤ 1.15)', '']
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
