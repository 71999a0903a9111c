"""The overlay: the input with boxes, track ids and the 133-keypoint
skeleton drawn on it, as an image or an mp4 at the source's fps and size;
in an mp4 each analysed frame is shown from its time until the next one's
(a range starts the mp4 at its first frame; a step holds each frame for
the time of the frames skipped).

OpenCV drawing: measured here, 2.3 ms for 4 whole-body persons on a
1920×1287 frame, where mmpose's ``PoseLocalVisualizer`` takes 11.0 ms for
the same. Colours are those of mmpose's COCO-WholeBody metadata, so body,
feet, face and hands differ as in mmpose's own pictures. Only keypoints above ``kpt_thr`` are drawn, and a
link only when both its ends are.
"""
import os
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np

from pose_suite.config.specs import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from pose_suite.errors import ConfigError, OutputError, opencv_name


def overlay_path(visualize_output: Path, kind: str, output_file: Path,
                 output: Path) -> Path:
    """Where the overlay of one input goes.

    Args:
        visualize_output: the config's: a file for one input, or a folder
            that gets ``<result name>.overlay.jpg`` (an image) or
            ``.overlay.mp4`` (a video or stream), in the results' layout.
        kind: the input's kind (``image``, ``video``, ``stream``).
        output_file: its JSON; output: the config's ``output``.
    Raises:
        ConfigError: a file name whose kind does not fit the input's.
    """
    visualize_output = Path(visualize_output)
    suffix = visualize_output.suffix.lower()
    wanted = IMAGE_SUFFIXES if kind == 'image' else VIDEO_SUFFIXES
    if not suffix:
        relative = output_file.relative_to(output) \
            if output_file != output and output_file.is_relative_to(output) \
            else Path(output_file.name)
        return visualize_output / relative.with_name(
            relative.name[:-len('.json')] + '.overlay' + wanted[0])
    if suffix not in wanted:
        raise ConfigError(
            f'visualize_output {visualize_output} cannot hold the overlay of '
            f'a{"n" if kind == "image" else ""} {kind}: use '
            f'{"an image name (.jpg, .png)" if kind == "image" else "an .mp4 name"}')
    return visualize_output


def temporary_overlay(path: Path) -> Path:
    """The name an overlay is written under until it is complete:
    ``.<stem>.partial<suffix>`` beside it."""
    path = Path(path)
    return path.with_name(f'.{path.stem}.partial{path.suffix}')


def draw_persons(frame_bgr: np.ndarray, persons: List[Dict],
                 dataset_meta: Dict, kpt_thr: float) -> np.ndarray:
    """A copy of ``frame_bgr`` with each person drawn.

    Args:
        persons: as ``PoseExtractionService.extract`` returns them, with an
            optional ``track_id``.
        dataset_meta: the pose model's metadata (skeleton links, colours).
    """
    canvas = frame_bgr.copy()
    scale = max(1, round(max(canvas.shape[:2]) / 640))  # line width, radius
    links = dataset_meta.get('skeleton_links', [])
    link_colors = np.asarray(dataset_meta.get('skeleton_link_colors',
                                              [[0, 255, 0]] * len(links)))
    point_colors = np.asarray(dataset_meta.get('keypoint_colors',
                                               [[255, 128, 0]] * 133))
    for person in persons:
        x1, y1, x2, y2 = (int(round(v)) for v in person['bbox'][:4])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 255, 0), scale)
        label = f'{person["bbox_score"]:.2f}'
        if 'track_id' in person:
            label = f'id {person["track_id"]}  {label}'
        cv2.putText(canvas, label, (x1, max(y1 - 4 * scale, 10)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (0, 255, 0),
                    scale, cv2.LINE_AA)
        points = np.asarray(person['keypoints'])
        visible = np.asarray(person['keypoint_scores']) > kpt_thr
        for (start, end), color in zip(links, link_colors):
            if visible[start] and visible[end]:
                cv2.line(canvas, _point(points[start]), _point(points[end]),
                         _bgr(color), scale, cv2.LINE_AA)
        for index in np.flatnonzero(visible):
            cv2.circle(canvas, _point(points[index]), scale + 1,
                       _bgr(point_colors[index]), -1, cv2.LINE_AA)
    return canvas


def _point(xy) -> tuple:
    return int(round(float(xy[0]))), int(round(float(xy[1])))


def _bgr(rgb) -> tuple:
    return int(rgb[2]), int(rgb[1]), int(rgb[0])


class OverlayWriter:
    """Write the overlay of each frame; the file appears at ``close``
    (written under a temporary name, then renamed), or not at all if the
    run fails.

    Args:
        path: an image path for an image input, an .mp4 for a video or a
            live source (see :func:`overlay_path`).
        kind, width, height, fps: the source's.
    """

    def __init__(self, path: Path, kind: str, width: int, height: int,
                 fps: float, dataset_meta: Dict, kpt_thr: float):
        self.path = Path(path)
        self.kind = kind
        self.dataset_meta, self.kpt_thr = dataset_meta, kpt_thr
        self._temporary = temporary_overlay(self.path)
        opencv_name(self._temporary, OutputError, 'overlay')  # else a crash
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f'cannot write overlay {self.path}: '
                              f'{exc.strerror or exc}') from None
        self._video = None
        #: The last frame drawn, written once the next one says for how
        #: long it is shown; the first one's time; frames written.
        self._held: Optional[np.ndarray] = None
        self._origin_s: Optional[float] = None
        self._written = 0
        self._fps = fps if fps > 0 else 25.0
        if kind in ('video', 'stream'):
            self._video = cv2.VideoWriter(
                opencv_name(self._temporary, OutputError, 'overlay'),
                cv2.VideoWriter_fourcc(*'mp4v'),
                fps if fps > 0 else 25.0, (width, height))
            if not self._video.isOpened():
                raise OutputError(f'cannot write overlay video {self.path} '
                                  '(give it an .mp4 name)')

    def write(self, frame_bgr: np.ndarray, persons: List[Dict],
              timestamp_s: Optional[float] = None) -> None:
        """Draw one analysed frame. In a video each is shown from its time
        (``timestamp_s``) until the next analysed one's, at the overlay's
        rate (at least once), so that a stepped, ranged, variable-rate or
        damaged run's overlay keeps the source's times."""
        canvas = draw_persons(frame_bgr, persons, self.dataset_meta,
                              self.kpt_thr)
        if self._video is not None:
            if self._held is not None:
                self._show_held(until_s=timestamp_s)
            if self._origin_s is None:
                self._origin_s = timestamp_s
            self._held = canvas
            return
        try:
            written = cv2.imwrite(
                opencv_name(self._temporary, OutputError, 'overlay'), canvas)
        except cv2.error:  # an encoder OpenCV lacks
            written = False
        if not written:
            raise OutputError(f'cannot write overlay image {self.path}')

    def _show_held(self, until_s: Optional[float]) -> None:
        """Write the frame held until ``until_s`` (None: once)."""
        count = 1
        if until_s is not None and self._origin_s is not None:
            count = max(1, round((until_s - self._origin_s) * self._fps)
                        - self._written)
        for _ in range(count):
            self._video.write(self._held)
        self._written += count

    def close(self, keep: bool, end_s: Optional[float] = None) -> None:
        """Publish the overlay (``keep``) or remove it. ``end_s``: the
        time the last frame is shown until (the range's end; None:
        once)."""
        if self._video is not None:
            if self._held is not None and keep:
                self._show_held(until_s=end_s)
            self._video.release()
        if keep and self._temporary.exists():
            os.replace(self._temporary, self.path)
        elif self._temporary.exists():
            self._temporary.unlink()
