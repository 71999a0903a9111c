"""What ``--postprocess`` costs on a long result: the movement chain over
finished results, without the models.

    .venv/bin/python benchmarks/bench_movement.py [--frames 100000]
        [--persons 1] [--keep FOLDER]

Writes a result of ``--frames`` frames at 30 fps with ``--persons`` tracked
persons of 133 points each (a walk with 2 px of seeded noise, 5 % of the
points scored below kpt_thr, a 6-frame gap every 500 frames), as the suite
writes results (:func:`pose_suite.outputs.results.write_result`), then
times one whole ``pose_analysis_service.py --postprocess`` process on it
with the full chain: gaps of up to 10 frames filled, Hampel, a 6 Hz
Butterworth, angles, metres (1.75 m), ``trc`` and ``mot``. Prints the
seconds, the sizes and the CPU; nothing is written to RESULTS.md. For a
side-by-side figure, run the printed command under ``farm-bench``.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from bench import machine  # noqa: E402
from pose_suite.outputs.results import (frame_record, record_line,  # noqa
                                        write_result)

FLAGS = ['--interp-max-gap', '10', '--hampel', 'true', '--filter',
         'butterworth,cutoff_hz=6,order=4', '--person-height-m', '1.75',
         '--angles', '--format', 'trc', '--format', 'mot']


def keypoint_names():
    from pose_suite.outputs.report_pictures import wholebody_meta
    meta = wholebody_meta()
    return [meta['keypoint_id2name'][i] for i in range(133)]


def write_long_result(path: Path, frames: int, persons: int) -> None:
    """A result of ``frames`` frames (see the module)."""
    rng = np.random.default_rng(0)
    base = rng.uniform(200, 900, (persons, 133, 2))
    meta = {'source': 'walk.mp4', 'kind': 'video', 'width': 1920,
            'height': 1080, 'fps': 30.0, 'tracking': True,
            'keypoint_names': keypoint_names(),
            'thresholds': {'bbox_thr': 0.3, 'nms_thr': 0.3, 'kpt_thr': 0.3},
            'frame_count': frames, 'frames_failed': [],
            'run': {'result_id': 'bench'}}

    def lines():
        for index in range(frames):
            t = index / 30.0
            swing = 40 * np.sin(2 * np.pi * 0.8 * t + np.arange(133) / 9)
            people = []
            for person in range(persons):
                if index % 500 < 6:
                    continue  # a gap
                points = base[person] + np.stack([swing + 3 * t, swing], 1) \
                    + rng.normal(0, 2, (133, 2))
                scores = np.where(rng.random(133) < 0.05, 0.1, 0.9)
                people.append({'track_id': person, 'bbox': [0, 0, 10, 10],
                               'bbox_score': 0.9, 'keypoints': points,
                               'keypoint_scores': scores})
            yield record_line(frame_record(index, t, people))
    with open(path, 'w', encoding='utf-8') as handle:
        write_result(handle, meta, lines())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=100_000)
    parser.add_argument('--persons', type=int, default=1)
    parser.add_argument('--keep', type=Path, help='write the result here '
                        '(and keep it) instead of a temporary folder')
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix='bench_movement_'))
    folder.mkdir(parents=True, exist_ok=True)
    result = folder / 'walk.mp4.json'
    started = time.perf_counter()
    write_long_result(result, args.frames, args.persons)
    print(f'result: {args.frames} frames, {args.persons} person(s), '
          f'{result.stat().st_size / 1e6:.0f} MB, written in '
          f'{time.perf_counter() - started:.1f} s')
    command = [sys.executable, str(ROOT / 'pose_analysis_service.py'),
               '--config', str(folder / 'none.json'), '--postprocess',
               str(result), *FLAGS]
    (folder / 'none.json').write_text(json.dumps({}))
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        print(done.stderr, file=sys.stderr)
        return 1
    made = folder / 'walk.mp4.movement'
    size = sum(f.stat().st_size for f in made.iterdir()) / 1e6
    print(f'--postprocess: {seconds:.1f} s (whole process), {size:.0f} MB '
          f'in {made.name}/')
    print(f'machine: {machine()}')
    print('command:', ' '.join(command))
    return 0


if __name__ == '__main__':
    sys.exit(main())
