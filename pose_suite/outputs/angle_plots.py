"""The angles of a result over time, one plot per tracked person, for
``report.html`` (:func:`angle_plots_html`).

Only results written with ``angles`` have them; the plotted angles are
:data:`pose_suite.outputs.angles.PLOTTED` (knees, hips, trunk), in degrees
against seconds, a gap where an angle is null, each angle in the same
colour in every plot; a value with no value beside it (a line has no
length there) is drawn as a dot, and a person seen at one time only gets
one second of axis around it. An angle null in every frame of a person
(its points never seen above ``kpt_thr``) gets no line and no legend
entry, but a note under the plot. At most :data:`MAX_TRACKS` persons are drawn, those seen in
the most frames.

Each plot is drawn twice from one figure: at :data:`SMALL_INCHES` and the
report's 100 dpi, shown 1:1 in the pictures column (340 CSS px), its text
:data:`~pose_suite.outputs.report_pictures.LABEL_PT` (as large as the
table's), and at :data:`LARGE_DPI` for the picture a click shows.
"""
import html
import math
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

from pose_suite.outputs.angles import PLOTTED
from pose_suite.outputs.movement_files import movement_angles
from pose_suite.outputs.report_pictures import (LABEL_PT, figure_uri,
                                                new_figure)
from pose_suite.outputs.results import iter_frame_records, read_meta

MAX_TRACKS = 6
#: The plot in the table: 340x190 px at 100 dpi, shown 1:1.
SMALL_INCHES = (3.4, 1.9)
#: The picture a click shows: the same drawing with 2.5 times the pixels
#: (850x475), sharp at the lightbox's 900-1200 CSS px.
LARGE_DPI = 250
#: The colours a plot is reduced to (lines, text and their antialiasing):
#: as it looks, in a third of the bytes.
COLOUR_COUNT = 32
#: Matplotlib's default colours, one per plotted angle, whichever are drawn.
COLOURS = dict(zip(PLOTTED, ('tab:blue', 'tab:orange', 'tab:green',
                             'tab:red', 'tab:purple')))


def angle_tracks(result: Path) -> Dict[int, Dict[str, List[Tuple]]]:
    """track_id -> angle name -> [(seconds, degrees or NaN), ...] for the
    plotted angles of a result written with ``angles`` ({} otherwise, and
    for persons without a track_id); those of the cleaned points when the
    movement folder beside it was made from it with angles."""
    meta = read_meta(result) or {}
    cleaned = movement_angles(result, meta)
    if cleaned is not None:  # the movement chain's, from cleaned points
        return {track: {name: series[name] for name in PLOTTED
                        if name in series}
                for track, series in cleaned.items()}
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
    """For each of the longest-seen tracks: an ``<img>`` (lazy
    ``data-src``, as report.py's pictures; ``data-full``: the large
    picture) and a note naming the angles it has no value of; '' when the
    result has no angles."""
    tracks = angle_tracks(result)
    cleaned = bool(tracks) and movement_angles(
        result, read_meta(result) or {}) is not None
    longest = sorted(tracks, key=lambda track: (
        -max(len(series) for series in tracks[track].values()), str(track)))
    return ''.join(track_html(track, tracks[track], cleaned)
                   for track in longest[:MAX_TRACKS])


def drawn_and_empty(series: Dict[str, List[Tuple]]
                    ) -> Tuple[Dict[str, List[Tuple]], List[str]]:
    """The series with at least one value, and the names of those null
    (NaN) in every frame."""
    drawn = {name: points for name, points in series.items()
             if any(math.isfinite(value) for _, value in points)}
    return drawn, [name for name in series if name not in drawn]


def track_html(track, series: Dict[str, List[Tuple]],
               cleaned: bool = False) -> str:
    """One person's plot (none when no angle has a value) and note;
    ``cleaned``: the movement chain's angles (the title says so)."""
    drawn, empty = drawn_and_empty(series)
    who = html.escape(f'person {track}')
    what = 'cleaned angles' if cleaned else 'angles'
    parts = []
    if drawn:
        small, large = plot_uris(track, drawn, cleaned)
        parts.append(f'<img class="plot angles" alt="{what} of {who} '
                     f'(click to enlarge)" title="{what} of {who}" '
                     f'data-src="{html.escape(small)}" '
                     f'data-full="{html.escape(large)}">')
    if empty:
        parts.append(f'<div class="note">{who}: no value in any frame for '
                     f'{html.escape(", ".join(empty))}</div>')
    return ''.join(parts)


def plot_uris(track, series: Dict[str, List[Tuple]],
              cleaned: bool = False) -> Tuple[str, str]:
    """(small, large) WebP data URIs of one person's angles."""
    from matplotlib import pyplot
    figure = angle_figure(track, series, cleaned)
    try:
        return (figure_uri(figure, colours=COLOUR_COUNT),
                figure_uri(figure, dpi=LARGE_DPI, colours=COLOUR_COUNT,
                           layout=False))
    finally:
        pyplot.close(figure)


def isolated(points: List[Tuple]) -> List[Tuple]:
    """The ``(seconds, degrees)`` of ``points`` whose value is finite and
    whose neighbours (in order) are not: no line segment shows them."""
    finite = [math.isfinite(value) for _, value in points]
    return [point for index, point in enumerate(points) if finite[index]
            and not (index and finite[index - 1])
            and not (index + 1 < len(points) and finite[index + 1])]


def angle_figure(track, series: Dict[str, List[Tuple]],
                 cleaned: bool = False):
    """The figure (SMALL_INCHES at 100 dpi) of ``series``, angle name ->
    [(seconds, degrees or NaN)]: a line and a legend entry each, the
    legend right of the axes, every text LABEL_PT. The caller closes it."""
    figure, axis = new_figure(SMALL_INCHES)
    for name, points in series.items():
        times, values = zip(*points)
        axis.plot(times, values, linewidth=1.2, label=name,
                  color=COLOURS.get(name))
        alone = isolated(points)
        if alone:
            axis.plot(*zip(*alone), linestyle='none', marker='o',
                      markersize=3, color=COLOURS.get(name))
    times = [time for points in series.values() for time, _ in points]
    if times and min(times) == max(times):  # one time: no range of its own
        start = max(0.0, times[0] - 0.5)
        axis.set_xlim(start, start + 1.0)
    axis.set_title(f'person {track}: {"cleaned " if cleaned else ""}'
                   'angles (°)', fontsize=LABEL_PT, pad=3)
    axis.set_xlabel('time (s)', fontsize=LABEL_PT, labelpad=1)
    axis.legend(fontsize=LABEL_PT, loc='upper left',
                bbox_to_anchor=(1.01, 1.0), borderaxespad=0, frameon=False,
                handlelength=1.0, handletextpad=0.4, labelspacing=0.25)
    return figure
