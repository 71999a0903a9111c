"""Cost of the angles (``angles: true``) per person-frame, on this CPU.

    .venv/bin/python benchmarks/bench_angles.py

Times, on keypoints shaped as results hold them (133 points, scores around
the threshold so that some angles are null):

* ``record``: what a run adds per person: ``person_record`` with angles
  minus without (the angles of one person, from its rounded keypoints);
* ``batch``: :meth:`AngleComputer.compute` on 10 000 persons at once.
"""
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pose_suite.outputs.angles import AngleComputer  # noqa: E402
from pose_suite.outputs.report import _wholebody_meta  # noqa: E402
from pose_suite.outputs.results import person_record  # noqa: E402


def best_of(function, repeat=5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    meta = _wholebody_meta()
    names = [meta['keypoint_id2name'][i] for i in range(133)]
    rng = np.random.default_rng(0)
    angles = AngleComputer(names, 0.3)
    persons = [{'bbox': np.array([0, 0, 100, 200, 0.9], np.float32),
                'bbox_score': 0.9,
                'keypoints': rng.uniform(0, 1000, (133, 2)).astype(
                    np.float32),
                'keypoint_scores': rng.uniform(0.2, 1, 133).astype(
                    np.float32)} for _ in range(500)]
    plain = best_of(lambda: [person_record(p) for p in persons])
    with_angles = best_of(lambda: [person_record(p, angles)
                                   for p in persons])
    keypoints = rng.uniform(0, 1000, (10000, 133, 2))
    scores = rng.uniform(0.2, 1, (10000, 133))
    batch = best_of(lambda: angles.compute(keypoints, scores))
    print(f'record without angles: {plain / len(persons) * 1e6:.0f} us '
          'per person-frame')
    print(f'angles added per person-frame (record): '
          f'{(with_angles - plain) / len(persons) * 1e6:.0f} us')
    print(f'angles, batch of 10000: {batch / 10000 * 1e6:.2f} us per '
          'person-frame')


if __name__ == '__main__':
    main()
