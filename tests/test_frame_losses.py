"""Frames lost or damaged are never a plain ``done``: the result lists
them (``meta.frames_damaged``, ``frames_failed``,
``frames_unread_at_end``), one warning line counts the damaged, the
summary has a column for each and a reason, the report shows it under the
status, and ``--resume`` that keeps the result says it again.

The models run on these clips with the detector stubbed (no one found):
what is tested is which frames are read, not poses.
"""
import json
import warnings

import numpy as np
import pytest
from conftest import ROOT
from test_damaged_frames import (FFMPEG, FFPROBE, damaged_clips,  # noqa: F401
                                 ffmpeg_verdict)

from pose_suite.outputs.report import write_report
from pose_suite.outputs.summary import rows_from_folder

CUT_SHORT = 'cut_half_faststart_50fps.mp4'  # 30 listed, 9 read, 8 lost
CLIP = ROOT / 'tests' / 'data' / CUT_SHORT


@pytest.fixture
def nobody_detected(analysis_service, monkeypatch):
    monkeypatch.setattr(analysis_service.detector, 'detect',
                        lambda frame: np.zeros((0, 5), np.float32))
    return analysis_service


def _run(service, *args, **options):
    """``analyse_input`` with the warnings it gave, as lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        done = service.analyse_input(*args, **options)
    return done, [str(w.message) for w in caught]


@pytest.mark.ffmpeg
@pytest.mark.skipif(not (FFMPEG and FFPROBE), reason='ffmpeg not installed')
def test_a_damaged_key_frame_is_listed_counted_and_shown(
        nobody_detected, damaged_clips, tmp_path):
    clip = damaged_clips('h264_key_mp4')
    output = tmp_path / 'out' / 'clip.mp4.json'
    done, said = _run(nobody_detected, clip, output)
    meta = json.loads(output.read_text())['meta']
    assert meta['frames_damaged'] == ffmpeg_verdict(clip) == [8]
    assert meta['frames_failed'] == [] and meta['frames_unread_at_end'] == 0
    lines = [s for s in said if 'errors FFmpeg concealed' in s]
    assert len(lines) == 1 and ': 1 frame(s) decoded' in lines[0] and \
        ': 8; listed in meta.frames_damaged' in lines[0], said

    rows = rows_from_folder(output.parent)
    assert [(r['status'], r['frames_damaged'], r['frames_failed'],
             r['frames_unread_at_end']) for r in rows] == [('done', 1, 0, 0)]
    assert rows[0]['reason'] == \
        '1 of 20 frames damaged (decoded with concealed errors)'
    page = write_report(output.parent, rows).read_text()
    assert '<div class="reason done">1 of 20 frames damaged (decoded ' \
        'with concealed errors)</div>' in page

    done, said = _run(nobody_detected, clip, output, resume=True)
    assert done.status == 'up to date'
    assert [s for s in said if 'up to date' in s] == [
        f'{output} (kept, up to date): 1 of 20 frames damaged (decoded '
        'with concealed errors)']


@pytest.mark.ffmpeg
@pytest.mark.skipif(not (FFMPEG and FFPROBE), reason='ffmpeg not installed')
def test_a_resumed_run_keeps_the_damage_before_its_interruption(
        nobody_detected, damaged_clips, tmp_path):
    """Interrupted after frame 10 (the damaged frame 8 written before),
    resumed from 11: frame 8 is still listed."""
    clip = damaged_clips('h264_key_mp4')
    output = tmp_path / 'clip.mp4.json'

    def stop_after_10(index):
        if index == 10:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        nobody_detected.analyse_input(clip, output, on_frame=stop_after_10)
    done, _ = _run(nobody_detected, clip, output, resume=True)
    meta = json.loads(output.read_text())['meta']
    assert meta['run']['resumed_from_frame'] == 11
    assert meta['frames_damaged'] == [8]


def test_a_clip_cut_short_is_not_a_plain_done(nobody_detected, tmp_path):
    """ffprobe decodes 9 of the 30 frames its index lists (frame 8 lost):
    columns, reason, report status, and the warning again when
    ``--resume`` keeps it; ``--report`` rebuilds the same row."""
    output = tmp_path / 'out' / f'{CUT_SHORT}.json'
    _run(nobody_detected, CLIP, output)
    meta = json.loads(output.read_text())['meta']
    assert (meta['frame_count'], meta['frames_failed'],
            meta['frames_unread_at_end']) == (9, [8], 20)
    reason = ('20 of 30 frames unread at end (file cut short or damaged); '
              '1 of 30 frames could not be decoded')
    rows = rows_from_folder(output.parent)
    assert [(r['status'], r['reason'], r['frames_failed'],
             r['frames_unread_at_end']) for r in rows] == [
                 ('done', reason, 1, 20)]
    assert f'<div class="reason done">{reason}</div>' in \
        write_report(output.parent, rows).read_text()

    done, said = _run(nobody_detected, CLIP, output,
                      resume=True)
    assert done.status == 'up to date'
    assert f'{output} (kept, up to date): {reason}' in said
    # Up to date rows (from an earlier summary) keep their reason.
    (output.parent / 'summary.json').write_text(json.dumps({'inputs': [
        {'input': str(CLIP), 'status': 'up to date',
         'result': output.name, 'reason': ''}]}))
    rows = rows_from_folder(output.parent)
    assert [(r['status'], r['reason']) for r in rows] == [
        ('up to date', reason)]


def test_rows_with_losses_come_first_among_their_status(tmp_path):
    from pose_suite.outputs.summary import ordered
    rows = [{'input': name, 'status': status, 'reason': reason}
            for name, status, reason in (
                ('a', 'done', ''), ('b', 'done', '3 of 9 frames unread'),
                ('c', 'up to date', ''), ('d', 'failed', 'x'))]
    assert [r['input'] for r in ordered(rows)] == ['d', 'b', 'a', 'c']


def test_the_terminal_says_it_again_when_resume_keeps_it(
        tiny_models, write_config, tmp_path):
    """The command line: the first run warns of the frames lost; a second
    with ``--resume`` keeps the result ("up to date") and says it again,
    as one ``warning:`` line."""
    from conftest import run_cli
    output = tmp_path / 'out.json'
    config = write_config(dict(tiny_models, input=str(CLIP),
                               output=str(output)))
    first = run_cli('pose_analysis_service.py', '--config', config)
    assert first.returncode == 0, first.stderr
    assert 'none after frame 9 could be decoded' in first.stderr
    again = run_cli('pose_analysis_service.py', '--config', config,
                    '--resume')
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f'up to date: {output}')
    assert again.stderr.splitlines() == [
        f'warning: {output} (kept, up to date): 20 of 30 frames unread at '
        'end (file cut short or damaged); 1 of 30 frames could not be '
        'decoded'], again.stderr


@pytest.mark.parametrize('lists, stitched', [
    ([[2], [], [7, 8]], [2, 7, 8]), ([[2], None, []], None)])
def test_stitched_segments_keep_their_damaged_frames(model_files, tmp_path,
                                                     lists, stitched):
    """A Ray run's result lists every segment's damaged frames; null (not
    checked) when a segment was not checked."""
    from pose_suite.batch.segments import Segment, stitch
    from pose_suite.config import build_config
    from pose_suite.outputs.results import record_line, write_result
    segments = [Segment(0, 3), Segment(3, 6), Segment(6, None)]
    files = []
    for segment, damaged in zip(segments, lists):
        meta = {'frame_count': 3, 'frames_failed': [],
                'frames_unread_at_end': 0, 'frames_damaged': damaged,
                'keypoint_names': [], 'run': {
                    'finished_at': '', 'seconds': 1.0}}
        files.append(tmp_path / f'segment{segment.start}.json')
        with open(files[-1], 'w', encoding='utf-8') as handle:
            write_result(handle, meta, (record_line(
                {'frame_index': i, 'timestamp_s': i / 10, 'persons': []})
                for i in range(segment.start, segment.start + 3)))
    config = build_config({key: str(model_files[key]) for key in (
        'det_config', 'det_checkpoint', 'pose_config', 'pose_checkpoint')})
    meta, _ = stitch(segments, files, tmp_path / 'stitched.json', config)
    assert meta['frames_damaged'] == stitched
    assert json.loads((tmp_path / 'stitched.json').read_text())['meta'][
        'frames_damaged'] == stitched
