"""The pictures of ``report.html``: a result's thumbnail and its plot, as
``data:`` URIs (WebP: a few KB each, so that 1,000 inputs stay under
10 MB), and the further plots of :data:`PLOT_MAKERS`.

The thumbnail is the representative frame (the most persons, then the
highest mean keypoint score) with the skeletons drawn by the overlay's own
:func:`~pose_suite.outputs.overlay.draw_persons`; the plot shows persons per
frame and the mean keypoint score over time, its labels at least as large
as the table's 13 CSS px text where it stands (a figure at 100 dpi is shown
at 1 px per pixel).
"""
import base64
import io
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np

from pose_suite.config.specs import is_stream
from pose_suite.outputs.results import iter_frame_records, read_meta

THUMBNAIL_SIZE = (240, 180)  # px, at most; shown at most 160x120 CSS px
PLOT_INCHES, PLOT_DPI = (3.4, 1.5), 100  # 340x150 px, shown 1:1
#: 9.5 pt at 100 dpi: 13.2 px, the smallest text on a plot (the table's
#: text is 13 px: report_style).
LABEL_PT = 9.5
#: Further plots of a result, each drawn under the first: a function of
#: (result path, its meta) giving a data URI or '' (nothing to show); it
#: reads the frames itself with ``iter_frame_records`` (a long video's
#: frames do not fit in memory at once). Other modules append to it, and
#: may draw with :func:`new_figure` and :func:`figure_uri`.
PLOT_MAKERS: List[Callable[[Path, dict], str]] = []


def pictures(result: Path, dataset_meta: dict) -> Tuple[str, List[str]]:
    """(thumbnail, [plot, ...]) of one result as data URIs ('' and no
    plots where there is nothing to show)."""
    meta = read_meta(result)
    times, counts, means = [], [], []
    best, best_key = None, None
    for frame in iter_frame_records(result):
        scores = [s for person in frame['persons']
                  for s in person['keypoint_scores'] if s is not None]
        mean = float(np.mean(scores)) if scores else float('nan')
        times.append(frame.get('timestamp_s') or 0.0)
        counts.append(len(frame['persons']))
        means.append(mean)
        key = (len(frame['persons']), mean if scores else -np.inf)
        if best_key is None or key > best_key:
            best, best_key = frame, key
    plots = [persons_plot(times, counts, means)] if len(counts) > 1 else []
    plots += [maker(result, meta) for maker in PLOT_MAKERS]
    return thumbnail(meta, best, dataset_meta), [p for p in plots if p]


def thumbnail(meta: dict, frame: Optional[dict], dataset_meta: dict) -> str:
    """The frame as displayed, skeletons drawn, within THUMBNAIL_SIZE."""
    from pose_suite.media.sources import open_source
    from pose_suite.outputs.overlay import draw_persons
    if frame is None or is_stream(str(meta['source'])):
        return ''
    source = open_source(meta['source'])
    image = next((picture for index, _, picture in source.frames(
        start=frame['frame_index']) if index >= frame['frame_index']), None)
    if image is None:
        return ''
    scale = min(THUMBNAIL_SIZE[0] / image.shape[1],
                THUMBNAIL_SIZE[1] / image.shape[0])
    image = cv2.resize(image, (max(1, round(image.shape[1] * scale)),
                               max(1, round(image.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    persons = [_scaled(person, scale) for person in frame['persons']]
    kpt_thr = (meta.get('thresholds') or {}).get('kpt_thr', 0.3)
    image = draw_persons(image, persons, dataset_meta, kpt_thr)
    ok, webp = cv2.imencode('.webp', image, [cv2.IMWRITE_WEBP_QUALITY, 60])
    return 'data:image/webp;base64,' + base64.b64encode(webp).decode()


def _scaled(person: dict, scale: float) -> dict:
    """A result's person with coordinates times ``scale``, unknown values
    (null) as NaN and their points not drawn."""
    points = np.array(person['keypoints'], np.float64) * scale
    scores = np.array(person['keypoint_scores'], np.float64)
    scores[~np.isfinite(points).all(axis=1)] = np.nan
    return {'keypoints': np.nan_to_num(points), 'keypoint_scores': scores,
            'bbox': (np.array(person['bbox'], np.float64) * scale).tolist(),
            'bbox_score': person.get('bbox_score') or 0.0,
            **({'track_id': person['track_id']}
               if 'track_id' in person else {})}


def persons_plot(times, counts, means) -> str:
    """Persons per frame (steps, left axis) and mean keypoint score (right
    axis) over time in s, or in min past two minutes."""
    minutes = max(times) - min(times) > 120
    times = np.asarray(times, np.float64) / (60 if minutes else 1)
    figure, persons_axis = new_figure()
    from matplotlib import pyplot
    try:
        persons_line, = persons_axis.step(
            times, counts, where='post', color='tab:blue', linewidth=1.2,
            label='persons')
        persons_axis.set_ylim(0, max(counts) + 1)
        persons_axis.set_ylabel('persons', fontsize=LABEL_PT)
        score_axis = persons_axis.twinx()
        score_line, = score_axis.plot(times, means, color='tab:orange',
                                      linewidth=1.2, label='mean score')
        score_axis.set_ylim(bottom=0)
        score_axis.set_ylabel('score', fontsize=LABEL_PT)
        score_axis.tick_params(labelsize=LABEL_PT, length=3, pad=2)
        persons_axis.set_xlabel('time (min)' if minutes else 'time (s)',
                                fontsize=LABEL_PT, labelpad=1)
        persons_axis.legend(handles=[persons_line, score_line],
                            fontsize=LABEL_PT, loc='lower left', ncol=2,
                            bbox_to_anchor=(0, 1), borderaxespad=0.1,
                            frameon=False, handlelength=1.2)
        return figure_uri(figure)
    finally:
        pyplot.close(figure)


def new_figure(inches: Tuple[float, float] = PLOT_INCHES):
    """A plot's (figure, axis), ``inches`` at PLOT_DPI (the report's
    size: PLOT_INCHES), ticks readable."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot
    figure, axis = pyplot.subplots(figsize=inches, dpi=PLOT_DPI)
    axis.tick_params(labelsize=LABEL_PT, length=3, pad=2)
    return figure, axis


def figure_uri(figure, dpi: Optional[float] = None,
               colours: Optional[int] = None, layout: bool = True) -> str:
    """A drawn figure as a lossless WebP data URI (a few KB); with
    ``dpi``, drawn at that resolution (the same drawing, more pixels); with
    ``colours``, reduced to that many colours first (a plot of a few lines
    looks the same with 32, in half the bytes or less); ``layout=False``
    keeps the layout of an earlier call (it does not change with ``dpi``)
    instead of computing it again (a third of the time)."""
    if dpi:
        figure.set_dpi(dpi)
    if layout:
        figure.tight_layout(pad=0.3)
    figure.canvas.draw()
    rgb = np.asarray(figure.canvas.buffer_rgba())[..., :3]
    from PIL import Image
    image = Image.fromarray(rgb)
    if colours:
        image = image.quantize(colours)
    buffer = io.BytesIO()
    # method 4 at effort 50: as small as method 6 at 100, 20 times faster.
    image.save(buffer, format='webp', lossless=True, quality=50, method=4)
    return 'data:image/webp;base64,' + base64.b64encode(
        buffer.getvalue()).decode()


def wholebody_meta() -> dict:
    """mmpose's COCO-WholeBody metadata: skeleton links and colours."""
    import mmpose
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    return parse_pose_metainfo({'from_file': str(
        Path(mmpose.__file__).parent / '.mim' / 'configs' / '_base_' /
        'datasets' / 'coco_wholebody.py')})
