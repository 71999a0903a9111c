"""``read_result`` against the raw JSON, on every result the tests write.

:func:`differences` compares a :class:`pose_suite.outputs.reading.Result`
with the file's JSON parsed here with ``json`` alone, field by field (it is
also what ``tests/test_read_result.py`` asserts with). As a pytest plugin
(``pytest_plugins`` in ``conftest.py``) it sweeps, when the session ends,
every result JSON under the session's temporary folder (what any test or
the processes it started published) and fails the session, naming the
file, where ``read_result`` differs from the JSON or cannot read a whole
one. Files that are not whole JSON (cut short or damaged on purpose) are
left to their own tests. Cost: a few ms a result (53 results of three
result-heavy test files: 0.74 s on 2 busy cores); ``POSE_SUITE_RESULT_SWEEP=0``
turns it off.
"""
import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import List

import numpy as np

#: Set to 0 to skip the sweep (e.g. when timing other things).
SWEEP_ENV = 'POSE_SUITE_RESULT_SWEEP'
#: Files bigger than this are not swept (tests write small results).
MAX_BYTES = 20_000_000


def _same(got, want) -> bool:
    """A number read from the JSON (None: NaN) equals ``got`` exactly."""
    if want is None:
        return math.isnan(got)
    return got == want


def differences(result, raw: dict, limit: int = 5) -> List[str]:
    """Where ``result`` (``read_result`` of a file) differs from ``raw``
    (the file parsed with ``json``), in words; [] when it equals it."""
    found: List[str] = []

    def differ(text):
        found.append(text)
        return len(found) >= limit

    if result.meta != raw['meta']:
        return ['meta differs']
    frames = raw['frames']
    if list(result.frame_index) != [f['frame_index'] for f in frames]:
        return ['frame_index differs']
    if list(result.timestamp_s) != [f['timestamp_s'] for f in frames]:
        return ['timestamp_s differs']
    if result.keypoint_names != raw['meta'].get('keypoint_names'):
        return ['keypoint_names differ']
    persons = [p for f in frames for p in f['persons']]
    tracked = bool(raw['meta']['tracking']) if 'tracking' in raw['meta'] \
        else bool(persons) and all('track_id' in p for p in persons)
    if result.tracked != tracked:
        return [f'tracked is {result.tracked}, meta.tracking {tracked}']
    labels = sorted({p['track_id'] for p in persons}) if tracked else \
        list(range(max((len(f['persons']) for f in frames), default=0)))
    if list(result.track_ids) != labels:
        return [f'track_ids {list(result.track_ids)} where the JSON has '
                f'{labels}']
    angle_names = raw['meta'].get('angles')
    if result.angle_names != angle_names:
        return ['angle_names differ']
    smoothed = any('keypoints_raw' in p for p in persons)
    if (result.keypoints_raw is not None) != smoothed:
        return ['keypoints_raw present where the JSON has none, or absent']
    names = raw['meta'].get('keypoint_names')
    count = len(names) if names else \
        len(persons[0]['keypoints']) if persons else 0
    shape = (len(frames), len(labels))
    if result.keypoints.shape != shape + (count, 3) or \
            result.bboxes.shape != shape + (5,) or \
            result.present.shape != shape:
        return [f'shapes {result.keypoints.shape}, {result.bboxes.shape}']
    seen = np.zeros(shape, bool)
    for row, frame in enumerate(frames):
        for slot, person in enumerate(frame['persons']):
            column = labels.index(person['track_id']) if tracked else slot
            seen[row, column] = True
            where = f'frame {frame["frame_index"]} column {column}'
            points = result.keypoints[row, column]
            for k in range(count):
                x, y = person['keypoints'][k]
                if not (_same(points[k, 0], x) and _same(points[k, 1], y)
                        and _same(points[k, 2],
                                  person['keypoint_scores'][k])):
                    if differ(f'{where} keypoint {k}: {points[k]}'):
                        return found
                    break
            box = list(person['bbox']) + [person['bbox_score']]
            if not all(_same(g, w) for g, w in zip(result.bboxes[row, column],
                                                   box)):
                if differ(f'{where} bbox {result.bboxes[row, column]}'):
                    return found
            if smoothed and not all(
                    _same(result.keypoints_raw[row, column, k, c],
                          person['keypoints_raw'][k][c])
                    for k in range(count) for c in (0, 1)):
                if differ(f'{where} keypoints_raw differ'):
                    return found
            if angle_names is not None and not all(
                    _same(result.angles[row, column, a],
                          person.get('angles', {}).get(name))
                    for a, name in enumerate(angle_names)):
                if differ(f'{where} angles differ'):
                    return found
    if not (seen == result.present).all():
        return found + ['present differs from the persons of the JSON']
    empty = ~seen
    if not (np.isnan(result.keypoints[empty]).all()
            and np.isnan(result.bboxes[empty]).all()):
        found.append('a column without its person is not all NaN')
    return found


def check_file(path: Path) -> List[str]:
    """``differences`` of ``read_result(path)`` from the whole JSON
    ``path`` ([] where ``path`` is not whole JSON: cut short or damaged on
    purpose, left to the tests that made it so)."""
    from pose_suite import read_result
    from pose_suite.errors import ResultError
    try:
        raw = json.loads(Path(path).read_bytes())
    except ValueError:
        return []
    if not isinstance(raw, dict) or not isinstance(raw.get('frames'), list):
        return []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            result = read_result(path)
    except ResultError as exc:
        if _damaged(raw):
            return []  # made so on purpose: its test says what to expect
        return [f'ResultError on a whole JSON: {exc}']
    except Exception as exc:  # noqa: BLE001 - said, with its type
        return [f'{type(exc).__name__}: {exc}']
    try:
        return differences(result, raw)
    except Exception as exc:  # noqa: BLE001 - a JSON the check cannot take
        return [f'the check failed: {type(exc).__name__}: {exc}']


def _damaged(raw: dict) -> bool:
    """Whether a whole JSON result is damaged as ``read_result`` refuses
    it, judged here without it: frames out of order, fewer than its meta
    counts, or a person who is not one (a result edited by hand on purpose,
    e.g. ``test_movement_odd_cases``)."""
    indices = [frame.get('frame_index') for frame in raw['frames']]
    tracked = bool(raw['meta'].get('tracking'))
    return any(not isinstance(index, int) for index in indices) or \
        any(b <= a for a, b in zip(indices, indices[1:])) or \
        ('end' in raw and len(indices) != raw['meta'].get('frame_count')) or \
        not all(_is_person(person, tracked) for frame in raw['frames']
                for person in frame.get('persons', []))


def _number(value) -> bool:
    return value is None or (isinstance(value, (int, float))
                             and not isinstance(value, bool))


def _is_person(person, tracked: bool) -> bool:
    """Whether ``person`` holds what a result's person holds: keypoints as
    [x, y] pairs, as many scores, a box of 4 and its score, and an int64
    ``track_id`` when tracked."""
    try:
        points, scores = person['keypoints'], person['keypoint_scores']
        box = list(person['bbox']) + [person['bbox_score']]
    except (KeyError, TypeError):
        return False
    label = person.get('track_id', 0 if not tracked else None)
    return isinstance(label, int) and not isinstance(label, bool) and \
        -2 ** 63 <= label < 2 ** 63 and len(points) == len(scores) and \
        all(isinstance(p, list) and len(p) == 2 and all(map(_number, p))
            for p in points) and all(map(_number, scores)) and \
        len(box) == 5 and all(map(_number, box))


def result_files(folder: Path) -> List[Path]:
    """The result JSONs under ``folder`` (by their first bytes:
    ``pose_suite.outputs.results.is_result``)."""
    from pose_suite.outputs.results import is_result
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            try:
                if name.endswith('.json') and is_result(path) and \
                        path.stat().st_size <= MAX_BYTES:
                    found.append(path)
            except OSError:
                continue
    return sorted(found)


_FOUND: dict = {}


def pytest_sessionfinish(session, exitstatus):
    """Sweep the session's temporary folder (see the module's
    docstring)."""
    if os.environ.get(SWEEP_ENV) == '0' or \
            hasattr(session.config, 'workerinput'):
        return
    factory = getattr(session.config, '_tmp_path_factory', None)
    if factory is None:
        return
    try:
        base = factory.getbasetemp()
    except (OSError, ValueError):
        return
    started = time.perf_counter()
    files = result_files(base)
    _FOUND['count'] = len(files)
    _FOUND['failures'] = [(path, problems) for path in files
                          for problems in [check_file(path)] if problems]
    _FOUND['seconds'] = time.perf_counter() - started
    if _FOUND['failures']:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if 'count' not in _FOUND:
        return
    failures = _FOUND['failures']
    if failures:
        terminalreporter.section('read_result against the JSON', red=True)
        for path, problems in failures:
            terminalreporter.line(f'{path}: {"; ".join(problems)}')
    terminalreporter.line(
        f'read_result checked on {_FOUND["count"]} result file(s) the tests '
        f'wrote in {_FOUND["seconds"]:.2f} s: {len(failures)} differ')
