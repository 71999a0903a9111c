"""``pose_suite.read_result``: real results (the tiny models on real
frames) read back equal to their JSON, parsed here with ``json`` alone
(:func:`result_sweep.differences`), field by field: tracked and smoothed
with angles, untracked with two persons a frame, an image, frames without
anybody, a run stopped half-way, a copy cut short, a damaged file, files
saved again by other tools.

One file of about 550 lines, on purpose: every test reads the results of
one module-scoped ``runs`` fixture (the models run once, 8 to 20 s); a
second file would run them again.
"""
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import (ROOT, damaged_avi, data_file, real_frames,
                      with_models, write_avi)
from result_sweep import check_file, differences

from pose_suite import read_result
from pose_suite.errors import ResultError, SuiteWarning

FRAMES = 8


class Stop(Exception):
    """Stops a run half-way, as a kill would (its partial file stays)."""


@pytest.fixture(scope='module')
def runs(model_files, tmp_path_factory):
    """Results of real runs on an 8-frame clip of the two-person video
    (each frame gives the test detector's two boxes), by name."""
    from pose_analysis_service import PoseAnalysisService
    folder = tmp_path_factory.mktemp('read_result')
    clip = write_avi(folder / 'clip.avi', real_frames(FRAMES))

    def service(**keys):
        return PoseAnalysisService(with_models(
            {'device': 'cpu', 'bbox_thr': 0.0, 'kpt_thr': 0.0} | keys,
            model_files))

    made = {}
    untracked = service(tracking=False)
    made['untracked'] = untracked.run(clip, folder / 'untracked.json')
    made['image'] = untracked.run(data_file('images/000000000785.jpg'),
                                  folder / 'image.json')
    tracked = service(tracking=True, smoothing=True, angles=True)
    made['tracked'] = tracked.run(clip, folder / 'tracked.json')

    # A clip whose frame 1 cannot be decoded, analysed whole, and stopped
    # (as a kill would) once frame 3 is written: its partial file holds
    # frames 0, 2, 3 and the failed frame 1.
    damaged = damaged_avi(folder / 'damaged.avi', FRAMES, [1])
    made['damaged'] = tracked.run(damaged, folder / 'damaged.json')

    def stop(index):
        if index == 3:
            raise Stop
    with pytest.raises(Stop):
        tracked.analyse_input(damaged, folder / 'stopped.json',
                              on_frame=stop)
    made['stopped'] = folder / '.stopped.json.partial'
    # Thresholds between the boxes' scores: one where some frames keep
    # nobody, one where some keep one person and others two.
    scores = [sorted(p['bbox_score'] for p in frame['persons'])
              for frame in _json(made['untracked'])['frames']]
    levels = sorted({score for frame in scores for score in frame})
    middles = [(a + b) / 2 for a, b in zip(levels, levels[1:])]
    gaps = [m for m in middles if 0 in _counts(scores, m)]
    partly = [m for m in middles if {1, 2} <= _counts(scores, m)]
    assert gaps and partly, scores
    made['gaps'] = service(tracking=True, bbox_thr=gaps[0]).run(
        clip, folder / 'gaps.json')
    made['partly'] = service(tracking=True, bbox_thr=partly[0]).run(
        clip, folder / 'partly.json')
    return made


def _counts(scores, threshold):
    """The numbers of boxes frames keep at ``threshold``."""
    return {sum(score >= threshold for score in frame) for frame in scores}


def _json(path):
    return json.loads(path.read_text(encoding='utf-8'))


def _read(path):
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # a whole result warns nothing
        return read_result(path)


def test_tracked_smoothed_with_angles(runs):
    """A tracked, smoothed result with angles: every array equals the
    JSON; the angles table has a row per person and one column an
    angle."""
    raw, result = _json(runs['tracked']), _read(runs['tracked'])
    assert differences(result, raw) == []
    assert result.tracked and result.complete and result.incomplete is None
    assert list(result.track_ids) == [0, 1]
    assert result.keypoints.shape == (FRAMES, 2, 133, 3)
    assert result.keypoints_raw is not None
    assert not np.array_equal(result.keypoints_raw, result.keypoints)
    table = result.angles_dataframe()
    assert list(table.columns) == ['frame_index', 'timestamp_s',
                                   'track_id'] + raw['meta']['angles']
    persons = [(f['frame_index'], p['track_id'], p['angles'])
               for f in raw['frames'] for p in f['persons']]
    assert len(table) == len(persons) == 2 * FRAMES
    for (frame, track, angles), row in zip(persons, table.itertuples(
            index=False)):
        assert (row.frame_index, row.track_id) == (frame, track)
        for number, name in enumerate(raw['meta']['angles']):
            value = row[3 + number]
            assert np.isnan(value) if angles[name] is None \
                else value == angles[name]


def test_long_table_equals_json(runs):
    """``to_dataframe``: the columns asked, one row per keypoint of each
    person, in frame, track and keypoint order, equal to the JSON."""
    raw, result = _json(runs['tracked']), _read(runs['tracked'])
    table = result.to_dataframe()
    assert list(table.columns) == ['frame_index', 'timestamp_s', 'track_id',
                                   'keypoint', 'x', 'y', 'score']
    names = raw['meta']['keypoint_names']
    rows = [(f['frame_index'], f['timestamp_s'], p['track_id'], names[k],
             *p['keypoints'][k], p['keypoint_scores'][k])
            for f in raw['frames']
            for p in sorted(f['persons'], key=lambda p: p['track_id'])
            for k in range(len(names))]
    assert [tuple(row) for row in table.itertuples(index=False)] == rows
    assert str(table['frame_index'].dtype) == 'int64'
    assert str(table['track_id'].dtype) == 'int64'
    assert list(table['keypoint'].cat.categories) == names


def test_untracked_has_person_slots(runs):
    """An untracked result: one column per person slot (the place in the
    frame's persons, by decreasing bbox_score); no angles to tabulate."""
    raw, result = _json(runs['untracked']), _read(runs['untracked'])
    assert differences(result, raw) == []
    assert not result.tracked and list(result.track_ids) == [0, 1]
    assert result.present.all() and result.keypoints_raw is None
    assert (result.bboxes[:, 0, 4] >= result.bboxes[:, 1, 4]).all()
    table = result.to_dataframe()
    assert len(table) == 2 * FRAMES * 133
    assert set(table['track_id']) == {0, 1}
    with pytest.raises(ResultError, match='holds no angles'):
        result.angles_dataframe()


def test_image_result(runs):
    """An image: one frame at 0 s, its persons in slots."""
    raw, result = _json(runs['image']), _read(runs['image'])
    assert differences(result, raw) == []
    assert raw['meta']['kind'] == 'image'
    assert list(result.frame_index) == [0] and list(result.timestamp_s) == \
        [0.0]
    assert result.keypoints.shape == (1, len(raw['frames'][0]['persons']),
                                      133, 3)


def test_frames_without_anybody(runs):
    """Frames without a person are rows of NaN in the arrays and no rows
    in the tables; a track absent from a frame is NaN there."""
    raw, result = _json(runs['gaps']), _read(runs['gaps'])
    assert differences(result, raw) == []
    counts = [len(f['persons']) for f in raw['frames']]
    assert 0 in counts and max(counts) > 0
    empty = np.array(counts) == 0
    assert np.isnan(result.keypoints[empty]).all()
    assert not result.present[empty].any()
    table = result.to_dataframe()
    assert len(table) == sum(counts) * 133
    assert set(table['frame_index']) == {
        f['frame_index'] for f in raw['frames'] if f['persons']}


def test_track_absent_while_another_is_there(runs):
    """Frames where one track is seen and the other not: the other's
    column is NaN there and gives no rows."""
    raw, result = _json(runs['partly']), _read(runs['partly'])
    assert differences(result, raw) == []
    counts = np.array([len(f['persons']) for f in raw['frames']])
    assert set(counts) == {1, 2} and list(result.track_ids) == [0, 1]
    assert (result.present.sum(axis=1) == counts).all()
    alone = counts == 1
    assert np.isnan(result.keypoints[alone, 1]).all()
    assert np.isfinite(result.keypoints[alone, 0, :, 2]).all()
    table = result.to_dataframe()
    assert len(table) == counts.sum() * 133
    assert set(table[table.track_id == 1].frame_index) == set(
        result.frame_index[~alone])


def test_tables_name_frames_and_tracks_not_rows_and_columns(runs):
    """The tables' ``frame_index`` and ``track_id`` are the JSON's, not
    the arrays' row and column numbers: on the damaged clip's result
    (frame 1 failed to decode: rows 0-6 are frames 0, 2-7) with its
    track ids 0, 1 written as 3, 7 (a tracker that lost tracks 0-2)."""
    raw = _json(runs['damaged'])
    assert [f['frame_index'] for f in raw['frames']] == [0, *range(2, 8)]
    for frame in raw['frames']:
        for person in frame['persons']:
            person['track_id'] = 3 + 4 * person['track_id']
    result = _read(_write(raw, len(raw['frames'])))
    assert differences(result, raw) == []
    assert list(result.track_ids) == [3, 7]
    persons = [(f['frame_index'], p['track_id']) for f in raw['frames']
               for p in sorted(f['persons'], key=lambda p: p['track_id'])]
    assert len(persons) == 2 * (FRAMES - 1)
    long = result.to_dataframe()
    assert list(zip(long.frame_index[::133], long.track_id[::133])) == \
        persons
    angles = result.angles_dataframe()
    assert list(zip(angles.frame_index, angles.track_id)) == persons


def test_stopped_run_reads_its_partial_file(runs):
    """A run stopped after frame 3 (frame 1 failed to decode) leaves its
    partial file: it reads, with a warning, as the first 3 records of the
    whole run; with its last line cut half-way (a kill while writing) that
    line is dropped, said."""
    whole, partial = _json(runs['damaged']), runs['stopped']
    assert whole['meta']['frames_failed'] == [1]
    assert differences(_read(runs['damaged']), whole) == []
    assert b'{"failed_frame":1}' in partial.read_bytes()
    with pytest.warns(SuiteWarning, match='partial file of a run'):
        result = read_result(partial)
    assert not result.complete and result.meta == {}
    assert list(result.frame_index) == [0, 2, 3]
    assert result.keypoint_names is None and result.tracked
    assert list(result.to_dataframe().keypoint[:3]) == [0, 1, 2]
    _equal_frames(result, whole, 3)
    cut = partial.with_name('cut.partial')
    data = partial.read_bytes()
    cut.write_bytes(data[:len(data) - 200])
    with pytest.warns(SuiteWarning, match='half-written last line 5 '
                                          'dropped'):
        shorter = read_result(cut)
    assert list(shorter.frame_index) == [0, 2]
    _equal_frames(shorter, whole, 2)


def _equal_frames(result, whole, count):
    """``result``'s arrays are those of ``whole``'s first ``count``
    frames (read whole: checked against its JSON)."""
    reference = read_result(_write(whole, count))
    for name in ('frame_index', 'timestamp_s', 'keypoints', 'bboxes',
                 'keypoints_raw', 'angles', 'present', 'track_ids'):
        assert np.array_equal(getattr(result, name),
                              getattr(reference, name), equal_nan=True), name


def _write(raw, count):
    from pose_suite.outputs.results import record_line, write_result
    path = _write.folder / f'first_{count}.json'
    meta = dict(raw['meta'], frame_count=count)
    with open(path, 'w', encoding='utf-8') as handle:
        write_result(handle, meta, map(record_line, raw['frames'][:count]))
    return path


@pytest.fixture(autouse=True)
def _folder(tmp_path):
    _write.folder = tmp_path


def test_copy_cut_short(runs, tmp_path):
    """A published result cut short (a copy or a disk that stopped): its
    whole records, the half-written one dropped, with one warning; an
    earlier version's result (no ``end``, no ``result_id``) reads whole
    without one."""
    data = runs['untracked'].read_bytes()
    raw = _json(runs['untracked'])
    lines = data.split(b'\n')
    frames_at = lines.index(b'"frames": [') + 1
    cut = tmp_path / 'cut.json'
    cut.write_bytes(b'\n'.join(lines[:frames_at + 5]) + b'\n'
                    + lines[frames_at + 5][:100])
    with pytest.warns(SuiteWarning, match='cut short.*read 5 whole frame'):
        result = read_result(cut)
    assert not result.complete and 'cut short' in result.incomplete
    assert differences(result, {'meta': raw['meta'],
                                'frames': raw['frames'][:5]}) == []
    old = tmp_path / 'old.json'
    del raw['meta']['run']['result_id']
    text = json.dumps(raw['meta'], indent=2)
    old.write_text('{\n"meta": ' + text + ',\n"frames": [\n' + ',\n'.join(
        json.dumps(f, separators=(',', ':')) for f in raw['frames'])
        + '\n]\n}\n')
    assert differences(_read(old), raw) == []


@pytest.mark.parametrize('damage', ['garbage line', 'out of order',
                                    'repeated record', 'lost records',
                                    'not a result'])
def test_damage_raises_result_error(runs, tmp_path, damage):
    """Damage before the last line is one error type, naming the file and
    the line."""
    lines = runs['tracked'].read_bytes().split(b'\n')
    at = lines.index(b'"frames": [') + 3
    if damage == 'garbage line':
        lines[at] = b'\x00' * 40
        match = f'damaged at line {at + 1}: not a frame record'
    elif damage == 'out of order':
        lines[at], lines[at + 1] = lines[at + 1], lines[at]
        match = f'damaged at line {at + 2}: frame 2 comes after frame 3'
    elif damage == 'repeated record':  # frame 2 written twice
        lines.insert(at + 1, lines[at])
        match = f'damaged at line {at + 2}: frame 2 comes after frame 2'
    elif damage == 'lost records':
        del lines[at]
        match = 'damaged: 7 frame records where its meta counts 8'
    else:
        lines = [b'{"frames": []}']
        match = 'not a result of this suite'
    path = tmp_path / 'damaged.json'
    path.write_bytes(b'\n'.join(lines))
    with pytest.raises(ResultError, match=match):
        read_result(path)


def test_arrays_have_the_documented_dtypes(runs):
    """Every array has the dtype the docs give (a float ``present``
    cannot pick the persons out: ``r.keypoints[r.present]``)."""
    result = _read(runs['partly'])
    assert {name: str(getattr(result, name).dtype) for name in (
        'frame_index', 'timestamp_s', 'track_ids', 'present', 'keypoints',
        'bboxes')} == {'frame_index': 'int64', 'timestamp_s': 'float64',
                       'track_ids': 'int64', 'present': 'bool',
                       'keypoints': 'float64', 'bboxes': 'float64'}
    persons = [p for f in _json(runs['partly'])['frames']
               for p in f['persons']]
    assert result.keypoints[result.present].shape == (len(persons), 133, 3)
    tracked = _read(runs['tracked'])
    assert (str(tracked.keypoints_raw.dtype), str(tracked.angles.dtype)) == \
        ('float64', 'float64')


def test_reading_leaves_the_garbage_collector_as_it_was(runs, tmp_path):
    """read_result pauses the cyclic garbage collector while it reads:
    it is on again after a read, also after a damaged file raised, and
    stays off where the caller had turned it off."""
    import gc
    assert gc.isenabled()
    assert differences(_read(runs['tracked']), _json(runs['tracked'])) == []
    assert gc.isenabled()
    lines = runs['tracked'].read_bytes().split(b'\n')
    lines[lines.index(b'"frames": [') + 3] = b'{"frame_index": true'
    damaged = tmp_path / 'damaged.json'
    damaged.write_bytes(b'\n'.join(lines))
    with pytest.raises(ResultError, match='damaged at line'):
        read_result(damaged)
    assert gc.isenabled()
    gc.disable()
    try:
        _read(runs['tracked'])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_sweep_catches_a_wrong_reader(runs, monkeypatch):
    """The session's sweep (``result_sweep``) finds a reader that swaps
    two fields, or loses a person."""
    assert check_file(runs['tracked']) == []
    import pose_suite.outputs.reading as reading
    real = reading.triplets
    monkeypatch.setattr(reading, 'triplets',
                        lambda person: real(person)[:, [1, 0, 2]])
    assert 'keypoint 0' in check_file(runs['tracked'])[0]
    monkeypatch.undo()
    real_result = reading._Frames.result

    def lose_last(frames, why):
        frames.persons.pop()
        return real_result(frames, why)
    monkeypatch.setattr(reading._Frames, 'result', lose_last)
    assert check_file(runs['tracked'])[0].startswith(
        'frame 7 column 1 keypoint 0: [nan nan nan]')


@pytest.mark.parametrize('damage', ['no scores', 'track id text'])
def test_sweep_leaves_results_damaged_on_purpose_to_their_tests(
        runs, tmp_path, monkeypatch, damage):
    """A whole JSON whose person is no person (edited by hand, as
    test_movement_odd_cases does) is refused by ``read_result`` and left
    alone by the sweep; the same refusal of the intact file is reported."""
    raw = json.loads(runs['tracked'].read_text())
    person = raw['frames'][0]['persons'][0]
    if damage == 'no scores':
        del person['keypoint_scores']
    else:
        person['track_id'] = 'bob'
    edited = tmp_path / 'edited.json'
    edited.write_text(json.dumps(raw))
    with pytest.raises(ResultError):
        read_result(edited)
    assert check_file(edited) == []
    import pose_suite.outputs.reading as reading

    def refuse(path):
        raise ResultError(f'{path} is damaged')
    monkeypatch.setattr(reading, 'read_result', refuse)
    monkeypatch.setattr('pose_suite.read_result', refuse, raising=False)
    assert check_file(runs['tracked'])[0].startswith(
        'ResultError on a whole JSON')


def test_the_sweep_finds_the_results_and_fails_the_session(runs, tmp_path,
                                                          monkeypatch):
    """The session's sweep takes every result JSON under the session's
    folder (here the runs': not the clips, nor the stopped run's partial
    file) and fails the session where ``read_result`` differs from one,
    naming it; a right reader leaves the session as it was."""
    import shutil
    import types

    import pose_suite.outputs.reading as reading
    import result_sweep
    assert [path.name for path in result_sweep.result_files(
        runs['tracked'].parent)] == ['damaged.json', 'gaps.json',
                                     'image.json', 'partly.json',
                                     'tracked.json', 'untracked.json']
    base = tmp_path / 'session'
    (base / 'sub').mkdir(parents=True)
    shutil.copy(runs['tracked'], base / 'sub' / 'tracked.json')
    session = types.SimpleNamespace(exitstatus=0, config=types.SimpleNamespace(
        _tmp_path_factory=types.SimpleNamespace(getbasetemp=lambda: base)))
    monkeypatch.delenv(result_sweep.SWEEP_ENV, raising=False)
    monkeypatch.setattr(result_sweep, '_FOUND', {})
    result_sweep.pytest_sessionfinish(session, 0)
    assert (session.exitstatus, result_sweep._FOUND['count'],
            result_sweep._FOUND['failures']) == (0, 1, [])
    real = reading.triplets
    monkeypatch.setattr(reading, 'triplets',
                        lambda person: real(person)[:, [1, 0, 2]])
    result_sweep.pytest_sessionfinish(session, 0)
    assert session.exitstatus == 1
    assert [path for path, _ in result_sweep._FOUND['failures']] == [
        base / 'sub' / 'tracked.json']


def test_pandas_only_when_asked(runs):
    """``import pose_suite`` and ``read_result`` import neither pandas nor
    the models' libraries; ``to_dataframe`` imports pandas."""
    script = (
        'import sys\nimport pose_suite\n'
        'assert "numpy" not in sys.modules\n'
        'from pose_suite import read_result\n'
        f'r = read_result({str(runs["tracked"])!r})\n'
        'heavy = {"pandas", "torch", "mmdet", "mmpose", "cv2"} & '
        'set(sys.modules)\n'
        'assert not heavy, heavy\n'
        'r.to_dataframe()\nassert "pandas" in sys.modules\n')
    done = subprocess.run([sys.executable, '-c', script], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_docs_page_examples_run(runs, monkeypatch):
    """Every Python block of docs/results-in-python.md runs, in order, on
    the tracked result (for ``output/clip.mp4.json``), and its tables are
    the ones the page describes."""
    import re

    import matplotlib
    matplotlib.use('Agg')
    page = (ROOT / 'docs' / 'results-in-python.md').read_text('utf-8')
    blocks = re.findall(r'```python\n(.*?)```', page, re.S)
    assert len(blocks) >= 4
    names = {}
    for block in blocks:
        assert "'output/clip.mp4.json'" in block or 'read_result(' not in \
            block
        exec(block.replace("'output/clip.mp4.json'",  # noqa: S102
                           repr(str(runs['tracked']))), names)
    assert list(names['knee'].columns) == [0, 1]
    assert len(names['wrist']) == 2 * FRAMES
    assert names['speed'].shape == (FRAMES - 1,)


@pytest.mark.parametrize('layout', ['indent=2', 'indent=0', 'one line',
                                    'keys reordered', 'frames removed',
                                    'no end'])
def test_result_resaved_by_json_dump(runs, tmp_path, layout):
    """A result loaded, changed and saved again with ``json.dump`` (a
    notebook's load, filter, save) reads as its JSON; whole when its
    ``end`` still counts its records, else with a warning. A JSON that
    parses but is not a result is still refused."""
    raw = _json(runs['tracked'])
    if layout == 'keys reordered':
        raw = {'end': raw['end'], 'frames': [dict(reversed(f.items()))
                                             for f in raw['frames']],
               'meta': dict(reversed(raw['meta'].items()))}
    if layout == 'frames removed':
        raw['frames'] = raw['frames'][::2]
    if layout == 'no end':
        del raw['end']
    path = tmp_path / 'resaved.json'
    indent = {'indent=2': 2, 'indent=0': 0}.get(layout)
    path.write_text(json.dumps(raw, indent=indent), encoding='utf-8')
    if layout in ('frames removed', 'no end'):
        told = ('holds 4 frame records where its end counts 8'
                if layout == 'frames removed' else 'has no end record')
        with pytest.warns(SuiteWarning, match=told):
            result = read_result(path)
        assert not result.complete and told in result.incomplete
    else:
        result = _read(path)
        assert result.complete
    assert differences(result, raw) == []
    path.write_text(json.dumps({'meta': raw['meta'], 'frames': {}}))
    with pytest.raises(ResultError, match='not a result of this suite'):
        read_result(path)


def test_unreadable_file_is_said_so(runs, tmp_path):
    """A result the user may not read (mode 000, read by a process without
    root's power: ``unshare --user``) is said to be unreadable, not to be
    no result."""
    import shutil
    if shutil.which('unshare') is None or subprocess.run(
            ['unshare', '--user', 'true'], capture_output=True).returncode:
        pytest.skip('unshare --user is unavailable: no process here can '
                    'lack the power to read a mode-000 file')
    path = tmp_path / 'locked.json'
    shutil.copy(runs['tracked'], path)
    path.chmod(0)
    script = ('from pose_suite import read_result\n'
              'from pose_suite.errors import ResultError\n'
              'try:\n    read_result("locked.json")\n'
              'except ResultError as exc:\n    print(exc)\n')
    done = subprocess.run(
        [shutil.which('unshare'), '--user', sys.executable, '-c', script], cwd=tmp_path,
        env={'PYTHONPATH': str(ROOT)}, capture_output=True, text=True,
        timeout=60)
    path.chmod(0o600)
    assert (done.returncode, done.stderr) == (0, '')
    assert done.stdout == 'locked.json cannot be read: Permission denied\n'


@pytest.mark.parametrize('change', ['CRLF', 'BOM', 'CRLF and BOM'])
def test_windows_line_ends_and_byte_order_mark(runs, tmp_path, change):
    """A result that went through git's autocrlf or a Windows editor
    (CRLF line ends, a UTF-8 byte order mark) reads whole, as its JSON,
    without a warning."""
    data = runs['tracked'].read_bytes()
    if 'CRLF' in change:
        data = data.replace(b'\n', b'\r\n')
    if 'BOM' in change:
        data = b'\xef\xbb\xbf' + data
    path = tmp_path / 'windows.json'
    path.write_bytes(data)
    result = _read(path)
    assert result.complete and result.incomplete is None
    assert differences(result, _json(runs['tracked'])) == []


@pytest.mark.parametrize('field', ['track_id', 'frame_index'])
def test_numbers_beyond_int64_are_damage(runs, tmp_path, field):
    """A track id or frame index beyond int64 is damage
    (``ResultError``), not numpy's OverflowError."""
    data = runs['tracked'].read_bytes()
    old = b'"%s":%d,' % (field.encode(), 0)
    assert old in data
    path = tmp_path / 'huge.result'  # not .json: the session's sweep
    path.write_bytes(data.replace(old, b'"%s":%d,' % (field.encode(),
                                                        2 ** 70), 1))
    lines = data.split(b'\n')
    at = lines.index(b'"frames": [') + 2
    with pytest.raises(ResultError, match=(
            f'damaged: frame 0, person 0: OverflowError track id {2**70}'
            if field == 'track_id' else
            f'damaged at line {at}: not a frame record')):
        read_result(path)


def test_dir_lists_read_result():
    """``dir(pose_suite)`` (tab completion) lists ``read_result``, which
    is imported only when first asked for."""
    import pose_suite
    assert 'read_result' in dir(pose_suite)
    assert dir(pose_suite) == sorted(dir(pose_suite))
