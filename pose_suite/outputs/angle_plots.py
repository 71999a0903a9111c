"""The angles of a result over time, one small plot per tracked person,
for ``report.html`` (:func:`angle_plots_html`).

Only results written with ``angles`` have them; the plotted angles are
:data:`pose_suite.outputs.angles.PLOTTED` (knees, hips, trunk), in degrees
against seconds, a gap where an angle is null. At most
:data:`MAX_TRACKS` persons are drawn, those seen in the most frames.
"""
import base64
import html
import io
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

from pose_suite.outputs.angles import PLOTTED
from pose_suite.outputs.results import iter_frame_records, read_meta

MAX_TRACKS = 6


def angle_tracks(result: Path) -> Dict[int, Dict[str, List[Tuple]]]:
    """track_id -> angle name -> [(seconds, degrees or NaN), ...] for the
    plotted angles of a result written with ``angles`` ({} otherwise, and
    for persons without a track_id)."""
    meta = read_meta(result) or {}
    names = [name for name in PLOTTED if name in (meta.get('angles') or [])]
    tracks: Dict[int, Dict[str, list]] = defaultdict(
        lambda: defaultdict(list))
    if not names:
        return {}
    for frame in iter_frame_records(result):
        for person in frame['persons']:
            if 'track_id' not in person or 'angles' not in person:
                continue
            for name in names:
                value = person['angles'].get(name)
                tracks[person['track_id']][name].append(
                    (frame['timestamp_s'],
                     float('nan') if value is None else value))
    return tracks


def angle_plots_html(result: Path) -> str:
    """``<img>`` tags (lazy ``data-src``, as report.py's pictures) of the
    angles of the longest-seen tracks; '' when the result has none."""
    tracks = angle_tracks(result)
    longest = sorted(tracks, key=lambda track: (
        -max(len(series) for series in tracks[track].values()), track))
    return ''.join(
        f'<img class="plot angles" alt="angles of person {track}" '
        f'title="angles of person {track}" '
        f'data-src="{html.escape(_plot(track, tracks[track]))}">'
        for track in longest[:MAX_TRACKS])


def _plot(track: int, series: Dict[str, List[Tuple]]) -> str:
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot
    figure, axis = pyplot.subplots(figsize=(2.6, 1.1), dpi=100)
    try:
        for name, points in series.items():
            times, values = zip(*points)
            axis.plot(times, values, linewidth=1, label=name)
        axis.set_title(f'person {track}: angles (°)', fontsize=6, pad=2)
        axis.legend(fontsize=4, loc='upper right', ncol=3, frameon=False)
        axis.tick_params(labelsize=5, length=2, pad=1)
        axis.set_xlabel('s', fontsize=6, labelpad=0)
        figure.tight_layout(pad=0.2)
        buffer = io.BytesIO()
        figure.savefig(buffer, format='png')
    finally:
        pyplot.close(figure)
    return 'data:image/png;base64,' + base64.b64encode(
        buffer.getvalue()).decode()
