"""How long the OpenPose export of a long video takes: 10,000 frames, one
person each, written by ``pose_suite.outputs.openpose.write_folder`` into a
folder on the disk that holds ``--work`` (default benchmarks/work).

    .venv/bin/python benchmarks/bench_exports.py [--frames N] [--work DIR]

Prints the seconds and the CPU it ran on; nothing is written to
RESULTS.md (run it before and after a change to compare).
"""
import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402

from pose_suite.outputs.openpose import write_folder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=10_000)
    parser.add_argument('--work', type=Path,
                        default=ROOT / 'benchmarks' / 'work' / 'exports')
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    person = {'bbox': [0, 0, 10, 10], 'bbox_score': 0.9,
              'keypoints': [[100.123, 200.456]] * 133,
              'keypoint_scores': [0.87654] * 133}
    frames = ({'frame_index': i, 'timestamp_s': i / 30,
               'persons': [person]} for i in range(args.frames))
    meta = {'source': str(args.work / 'clip.mp4'), 'kind': 'video',
            'keypoint_names': [f'k{i}' for i in range(133)],
            'frames_failed': []}
    started = time.perf_counter()
    folder = write_folder(args.work / 'clip.mp4.json', 'openpose', meta,
                          frames)
    seconds = time.perf_counter() - started
    count = len(list(folder.iterdir()))
    print(f'{count} OpenPose frame files in {seconds:.1f} s '
          f'({machine()})')
    shutil.rmtree(args.work, ignore_errors=True)


if __name__ == '__main__':
    main()
