"""What a range, a step and a person limit cost, against the whole run.

    .venv/bin/python benchmarks/bench_selection.py [--loops 30] [--repeats 3]

Two measurements, each a whole ``pose_analysis_service.py`` process per
run (start-up included), median of ``--repeats``:

1. **Reading**: ``two_people_72frames_1080p.mp4`` looped ``--loops`` times
   (``ffmpeg -stream_loop ... -c copy``: 72 x loops 1080p frames), with the
   tiny detector at 64x64 finding no one (so the cost is reading the video,
   not the models): the whole file, a 10 s ``--time-range`` in its middle,
   and ``--frame-step 4``.
2. **Models**: the real-size RTMDet-m and HRNet-W48 (random weights, exact
   mode, 2 persons a frame) on frames 0-23 of the same video: every frame,
   ``--frame-step 4``, and ``--max-persons 1``.

Prints a table and the CPU; nothing is written to RESULTS.md. Needs ffmpeg
and the models the tests build (``tests/model_factory.py``, cached in
``~/.cache/pose-suite-tests``).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / 'tests')]

from bench import machine  # noqa: E402
from model_factory import cached_model_files  # noqa: E402

TESTDATA = Path(os.environ.get('POSE_SUITE_TESTDATA',
                               ROOT.parent / 'shared' / 'testdata'))
VIDEO = TESTDATA / 'videos' / 'two_people_72frames_1080p.mp4'
CACHE = Path(os.environ.get('POSE_SUITE_TEST_CACHE',
                            Path.home() / '.cache' / 'pose-suite-tests'))


def _config(work: Path, name: str, size: str, **values) -> Path:
    files = cached_model_files(CACHE, size, 2)
    keys = ('det_config', 'det_checkpoint', 'pose_config', 'pose_checkpoint')
    config = {**{key: str(files[key]) for key in keys}, 'device': 'cpu',
              'bbox_thr': 0.0, 'quiet': True, **values}
    if size == 'tiny':  # the detector at 64x64, finding no one
        det = work / 'det_64.py'
        det.write_text(
            f"_base_ = '{files['det_config']}'\n"
            "test_pipeline = [dict(type='LoadImageFromFile'),"
            " dict(type='Resize', scale=(64, 64), keep_ratio=True),"
            " dict(type='Pad', size=(64, 64), pad_val=dict(img=(114, 114, "
            "114))), dict(type='PackDetInputs', meta_keys=('img_id', "
            "'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]\n"
            "test_dataloader = dict(dataset=dict(pipeline=test_pipeline))\n")
        config.update(det_config=str(det), bbox_thr=1.0)
    path = work / f'{name}.json'
    path.write_text(json.dumps(config))
    return path


def _seconds(config: Path, video: Path, output: Path, flags, repeats):
    """Median wall seconds of the whole process, and the frames written."""
    times = []
    for _ in range(repeats):
        output.unlink(missing_ok=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / 'pose_analysis_service.py'),
                        '--config', str(config), '--input', str(video),
                        '--output', str(output), *flags], check=True,
                       stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    frames = json.loads(output.read_text())['end']['frame_count']
    return statistics.median(times), frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--loops', type=int, default=30)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--work', type=Path,
                        default=ROOT / 'benchmarks' / 'work' / 'selection')
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    long = args.work / f'looped_{args.loops}.mp4'
    if not long.exists():
        subprocess.run(['ffmpeg', '-v', 'error', '-y', '-stream_loop',
                        str(args.loops - 1), '-i', str(VIDEO), '-c', 'copy',
                        str(long)], check=True)
    rows = []
    reading = _config(args.work, 'reading', 'tiny')
    middle = 72 * args.loops / 28.05 / 2
    for label, flags in (
            ('whole file', []),
            ('10 s time_range in the middle',
             ['--time-range', f'{middle:.1f}-{middle + 10:.1f}']),
            ('frame_step 4', ['--frame-step', '4'])):
        seconds, frames = _seconds(reading, long, args.work / 'r.json',
                                   flags, args.repeats)
        rows.append((f'reading {72 * args.loops} frames: {label}', frames,
                     seconds))
    models = _config(args.work, 'models', 'real')
    for label, flags in (('every frame', []),
                         ('frame_step 4', ['--frame-step', '4']),
                         ('max_persons 1', ['--max-persons', '1'])):
        seconds, frames = _seconds(models, VIDEO, args.work / 'm.json',
                                   ['--frame-range', '0-23', *flags],
                                   max(1, args.repeats - 1))
        rows.append((f'models, frames 0-23: {label}', frames, seconds))
    print(f'| run | frames analysed | wall s (median) |\n|---|---|---|')
    for label, frames, seconds in rows:
        print(f'| {label} | {frames} | {seconds:.1f} |')
    print(f'\n{machine()}')


if __name__ == '__main__':
    main()
