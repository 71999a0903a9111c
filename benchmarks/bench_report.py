"""How report.html scales: N copies of one result (and its input) in a
folder, ``pose_analysis_service.py --report`` on it, and the page opened in
headless Chromium. Prints seconds, megabytes and the CPU they come from.

    .venv/bin/python benchmarks/bench_report.py [RESULT.json] [--copies 1000]
        [--angles]

RESULT.json is any result of this suite whose input still exists (its
thumbnail is made from it); the copies keep its ``meta.source``. Without
it: the first version's result of tests/data's 24-frame clip, its source
pointed at that clip (synthetic copies in the real format, no model run);
with ``--angles``, two tracked persons in each of its frames with the
plotted angles (squats: knees 90-170 degrees and noise, one knee null in
a quarter of the frames), so that the page has their plots.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'benchmarks'))
sys.path.insert(1, str(ROOT))

from bench import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('result', type=Path, nargs='?')
    parser.add_argument('--copies', type=int, default=1000)
    parser.add_argument('--angles', action='store_true')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / 'results'
        folder.mkdir()
        result = args.result or _test_result(Path(scratch), args.angles)
        for number in range(args.copies):
            shutil.copy(result, folder / f'input_{number:05d}.json')
        started = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / 'pose_analysis_service.py'),
                        '--report', str(folder)], check=True,
                       capture_output=True)
        build_s = time.perf_counter() - started
        page = folder / 'report.html'
        load_s, all_pictures_s = _open(page)
        print(f'{args.copies} inputs on {machine()}: --report {build_s:.1f} s '
              f'({1000 * build_s / args.copies:.0f} ms an input); '
              f'report.html {page.stat().st_size / 1e6:.1f} MB; '
              f'Chromium: page loaded in {load_s:.2f} s, every picture '
              f'decoded after scrolling to the end in {all_pictures_s:.2f} s')


def _test_result(scratch: Path, angles: bool = False) -> Path:
    data = ROOT / 'tests' / 'data'
    name = 'two_people_24frames_4fps_gop5.mp4'
    text = (data / 'results_c8e1fd9' / f'{name}.json').read_text()
    text = text.replace(f'"/tmp/old/tests/data/{name}"',
                        json.dumps(str(data / name)), 1)
    path = scratch / f'{name}.json'
    path.write_text(text)
    if angles:
        _add_angles(path)
    return path


def _add_angles(path: Path) -> None:
    """Two tracked persons in every frame of ``path``, with angles."""
    import math
    import random

    from pose_suite.outputs.angles import PLOTTED
    from pose_suite.outputs.results import record_line, write_result
    whole = json.loads(path.read_text())
    meta = dict(whole['meta'], angles=list(PLOTTED), tracking=True)
    noise = random.Random(0)
    frames = []
    for frame in whole['frames']:
        phase = frame['timestamp_s'] * 1.5
        persons = []
        for track in (1, 2):
            knee = 130 + 40 * math.sin(phase + track)
            angles = {'right knee': knee + noise.gauss(0, 3),
                      'left knee': None if frame['frame_index'] % 4 == 0
                      else knee + noise.gauss(0, 3),
                      'right hip': knee - 20 + noise.gauss(0, 3),
                      'left hip': knee - 22 + noise.gauss(0, 3),
                      'trunk': 80 + 5 * math.sin(phase) + noise.gauss(0, 1)}
            persons.append({
                'bbox': [20.0 + 100 * track, 10.0, 80.0 + 100 * track,
                         130.0], 'bbox_score': 0.9,
                'keypoints': [[50.0 + 100 * track, 70.0]] * 133,
                'keypoint_scores': [0.5] * 133, 'track_id': track,
                'angles': {k: round(v, 6) if v is not None else None
                           for k, v in angles.items()}})
        frames.append(dict(frame, persons=persons))
    with open(path, 'w', encoding='utf-8') as handle:
        write_result(handle, meta, map(record_line, frames))


def _open(page: Path):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path='/usr/bin/chromium',
            args=['--no-sandbox', '--disable-gpu',
                  '--disable-background-networking', '--disable-sync',
                  '--disable-component-update', '--no-first-run'])
        tab = browser.new_page(viewport={'width': 1400, 'height': 1000})
        started = time.perf_counter()
        tab.goto(page.as_uri(), wait_until='load')
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        tab.evaluate('window.scrollTo(0, document.body.scrollHeight)')
        tab.evaluate("""() => new Promise(done => {
            const images = Array.from(document.querySelectorAll("td img"));
            images.forEach(i => { i.src = i.src || i.dataset.src; });
            Promise.all(images.map(i => i.decode())).then(done); })""")
        all_pictures_s = time.perf_counter() - started
        browser.close()
    return load_s, all_pictures_s


if __name__ == '__main__':
    main()
