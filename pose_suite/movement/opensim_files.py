"""Marker (.trc) and motion (.mot) files that OpenSim reads, written as
Sports2D 0.8.34 writes them.

* :func:`marker_names`: which COCO-WholeBody points go into a .trc, under
  the names Sports2D gives them (Pose2Sim's ``COCO_133`` skeleton, the one
  of Sports2D's ``whole_body`` mode), in its column order.
* :func:`write_trc`: marker trajectories, the header of Sports2D's
  ``make_trc_with_trc_data`` (Frame# counted from 0, as its DataFrame index).
* :func:`write_mot`: angles over time, the header of Sports2D's
  ``make_mot_with_angles``.

Numbers are written as Python's ``repr`` of the float64: the shortest text
that reads back to the same double (``0.1``, ``1e-07``, ``1234.5678``),
which is also what Sports2D's ``pandas.DataFrame.to_csv`` writes. OpenSim
4.6 (``std::stod``) reads back the very same doubles; Pose2Sim's readers
(``pandas.read_csv``, whose default parser is not always correctly
rounded) within a few units in the last place (~1e-14 relative).

A missing value is written ``NaN``, not the empty field that Sports2D's
``to_csv`` writes: OpenSim 4.6's ``TRCFileAdapter`` and ``STOFileAdapter``
take an empty field for NaN only when something follows it on the line; a
row whose last marker (or angle) is missing ends in tabs, its last empty
field is not counted and the whole file is refused ("Unexpected number of
columns in line 8. Expected = 8. Received = 7."). ``NaN`` is read as NaN
by both, wherever it is, and by Pandas (Pose2Sim's ``read_trc`` and
``read_mot``).

Files are published whole or not at all
(:func:`pose_suite.outputs.publish.atomic_write`: a temporary file beside
the target, renamed over it).
"""
import math
import os
from typing import Dict, List, Sequence

import numpy as np

from pose_suite.outputs.number_text import table_text
from pose_suite.outputs.publish import atomic_write

#: Sports2D's markers of the COCO-WholeBody model: (index of the point in
#: COCO-WholeBody, which is mmpose's index, Sports2D's name), in the order
#: of its .trc columns. These are the nodes with an id of Pose2Sim
#: 0.10.49's ``skeletons.COCO_133`` in anytree's ``RenderTree`` order, as
#: Sports2D 0.8.34's ``process`` lists them. 131 of the 133 points: the two
#: hand roots (91, 112), which are the wrists again, are not markers.
#: Sports2D then appends two markers of its own, ``Hip`` (the middle of the
#: hips) and ``Neck`` (the middle of the shoulders), which are not points
#: of the model.
SPORTS2D_WHOLEBODY = (
    (12, 'RHip'), (14, 'RKnee'), (16, 'RAnkle'), (20, 'RBigToe'),
    (21, 'RSmallToe'), (22, 'RHeel'), (11, 'LHip'), (13, 'LKnee'),
    (15, 'LAnkle'), (17, 'LBigToe'), (18, 'LSmallToe'), (19, 'LHeel'),
    (0, 'Nose'), (2, 'REye'), (1, 'LEye'), (4, 'REar'), (3, 'LEar'),
    (6, 'RShoulder'), (8, 'RElbow'), (10, 'RWrist'), (113, 'RThumb1'),
    (114, 'RThumb'), (115, 'RThumb3'), (116, 'RThumb4'), (117, 'RIndex'),
    (118, 'RIndex2'), (119, 'RIndex3'), (120, 'RIndex4'), (121, 'RMiddle1'),
    (122, 'RMiddle2'), (123, 'RMiddle3'), (124, 'RMiddle4'), (125, 'RRing1'),
    (126, 'RRing2'), (127, 'RRing3'), (128, 'RRing4'), (129, 'RPinky'),
    (130, 'RPinky2'), (131, 'RPinky3'), (132, 'RPinky4'), (5, 'LShoulder'),
    (7, 'LElbow'), (9, 'LWrist'), (92, 'LThumb1'), (93, 'LThumb'),
    (94, 'LThumb3'), (95, 'LThumb4'), (96, 'LIndex'), (97, 'LIndex2'),
    (98, 'LIndex3'), (99, 'LIndex4'), (100, 'LMiddle1'), (101, 'LMiddle2'),
    (102, 'LMiddle3'), (103, 'LMiddle4'), (104, 'LRing1'), (105, 'LRing2'),
    (106, 'LRing3'), (107, 'LRing4'), (108, 'LPinky'), (109, 'LPinky2'),
    (110, 'LPinky3'), (111, 'LPinky4'), (23, 'Jaw1'), (24, 'Jaw2'),
    (25, 'Jaw3'), (26, 'Jaw4'), (27, 'Jaw5'), (28, 'Jaw6'), (29, 'Jaw7'),
    (30, 'Jaw8'), (31, 'Jaw9'), (32, 'Jaw10'), (33, 'Jaw11'), (34, 'Jaw12'),
    (35, 'Jaw13'), (36, 'Jaw14'), (37, 'Jaw15'), (38, 'Jaw16'), (39, 'Jaw17'),
    (40, 'EyebrowR1'), (41, 'EyebrowR2'), (42, 'EyebrowR3'), (43, 'EyebrowR4'),
    (44, 'EyebrowR5'), (45, 'EyebrowL1'), (46, 'EyebrowL2'), (47, 'EyebrowL3'),
    (48, 'EyebrowL4'), (49, 'EyebrowL5'), (50, 'Nose1'), (51, 'Nose2'),
    (52, 'Nose3'), (53, 'Nose4'), (54, 'Nose5'), (55, 'Nose6'), (56, 'Nose7'),
    (57, 'Nose8'), (58, 'Nose9'), (59, 'REye1'), (60, 'REye2'), (61, 'REye3'),
    (62, 'REye4'), (63, 'REye5'), (64, 'REye6'), (65, 'LEye1'), (66, 'LEye2'),
    (67, 'LEye3'), (68, 'LEye4'), (69, 'LEye5'), (70, 'LEye6'), (71, 'Mouth1'),
    (72, 'Mouth2'), (73, 'Mouth3'), (74, 'Mouth4'), (75, 'Mouth5'),
    (76, 'Mouth6'), (77, 'Mouth7'), (78, 'Mouth8'), (79, 'Mouth9'),
    (80, 'Mouth10'), (81, 'Mouth11'), (82, 'Mouth12'), (83, 'Mouth13'),
    (84, 'Mouth14'), (85, 'Mouth15'), (86, 'Mouth16'), (87, 'Mouth17'),
    (88, 'Mouth18'), (89, 'Mouth19'), (90, 'Mouth20'),
)
#: COCO-WholeBody's number of points.
WHOLEBODY_POINTS = 133
#: mmpose's names of COCO-WholeBody's first 23 points (body and feet), by
#: which :func:`marker_names` knows the model.
_BODY_NAMES = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear',
    'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow',
    'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee',
    'right_knee', 'left_ankle', 'right_ankle', 'left_big_toe',
    'left_small_toe', 'left_heel', 'right_big_toe', 'right_small_toe',
    'right_heel')
#: The units a .trc may be in.
TRC_UNITS = ('px', 'm')
#: How a missing value is written (see the module's docstring).
NAN_TEXT = 'NaN'


def marker_names(keypoint_names: Sequence[str]) -> Dict[int, str]:
    """The points of a COCO-WholeBody model that go into a .trc, with the
    names Sports2D gives them.

    Args:
        keypoint_names: the model's 133 point names in its order (mmpose's
            dataset meta: ``nose``, ``left_eye``, ...).
    Returns:
        {index of the point in ``keypoint_names``: marker name}, in the
        order of Sports2D's .trc columns (:data:`SPORTS2D_WHOLEBODY`): 131
        markers, ``{12: 'RHip', 14: 'RKnee', 16: 'RAnkle', ...}``.
    Raises:
        ValueError: ``keypoint_names`` are not COCO-WholeBody's 133 points
            in mmpose's order.
    """
    names = list(keypoint_names)
    if (len(names) != WHOLEBODY_POINTS
            or tuple(names[:len(_BODY_NAMES)]) != _BODY_NAMES):
        raise ValueError(
            f'not the {WHOLEBODY_POINTS} COCO-WholeBody points in mmpose\'s '
            f'order ({len(names)} points, the first '
            f'{names[:3]}): no OpenSim marker names for them')
    return {index: name for index, name in SPORTS2D_WHOLEBODY}


def write_trc(path, time_s, xyz, names: Sequence[str], rate_hz: float,
              units: str, first_frame: int = 0, shown_path=None) -> None:
    """Write marker trajectories as an OpenSim .trc file, as Sports2D's
    ``make_trc_with_trc_data`` writes one.

    The header: ``PathFileType\\t4\\t(X/Y/Z)\\t<path>``; the keys
    ``DataRate CameraRate NumFrames NumMarkers Units OrigDataRate
    OrigDataStartFrame OrigNumFrames`` and their values (``rate_hz`` for
    the three rates, written as an integer when it is one, as Sports2D's
    rounded video rate; T; M; ``units``; 0; T); ``Frame#\\tTime\\t`` then
    each name followed by three tabs; two tabs then ``X1\\tY1\\tZ1\\t...``.
    Then one line per frame: the frame number (``first_frame``,
    ``first_frame`` + 1, ...: Sports2D writes its DataFrame's index, from 0
    at the first frame it analysed), the time and the M x, y, z, tab-
    separated. Numbers and NaN as the module's docstring says. Unlike
    Sports2D (which writes ``m`` also in its file in pixels), ``Units`` is
    ``units``.

    Args:
        path: the file to write (replaced whole, or left as it was when
            this fails); also written, as given, in the first line.
        time_s: (T,) seconds, finite and strictly increasing (OpenSim
            refuses a table whose times do not increase); T >= 1.
        xyz: (T, M, 3) positions in ``units``; NaN where missing (a marker
            partly NaN is all NaN to OpenSim); no infinities.
        names: M marker names, distinct, without tabs or line breaks.
        rate_hz: the frame rate, > 0.
        units: ``'px'`` or ``'m'``.
        first_frame: the Frame# of the first row.
        shown_path: the path the first line names (default ``path``): the
            file's place once published, when it is written elsewhere
            first.
    Raises:
        ValueError: shapes, values or names as above are not so.
        OSError: the file cannot be written.
    """
    time_s = _times(time_s)
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.ndim != 3 or xyz.shape[0] != len(time_s) or xyz.shape[2] != 3:
        raise ValueError(f'xyz has shape {xyz.shape}, not (T, M, 3) with '
                         f'T = {len(time_s)} times')
    names = _names(names, xyz.shape[1], 'marker')
    if units not in TRC_UNITS:
        raise ValueError(f'units {units!r} is not one of {TRC_UNITS}')
    rate = float(rate_hz)
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f'rate_hz {rate_hz!r} is not a positive number')
    _no_infinity(xyz, 'xyz')
    frames, markers = len(time_s), len(names)
    rate_text = str(int(rate)) if rate.is_integer() else repr(rate)
    # The path as text (a name that is not UTF-8: its bytes escaped).
    path_text = os.fsencode(os.fspath(path if shown_path is None
                                      else shown_path)).decode(
        'utf-8', 'backslashreplace')
    header = [
        'PathFileType\t4\t(X/Y/Z)\t' + path_text,
        'DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate'
        '\tOrigDataStartFrame\tOrigNumFrames',
        '\t'.join([rate_text, rate_text, str(frames), str(markers), units,
                   rate_text, '0', str(frames)]),
        'Frame#\tTime\t' + '\t\t\t'.join(names) + '\t\t\t',
        '\t\t' + '\t'.join(f'X{i}\tY{i}\tZ{i}'
                           for i in range(1, markers + 1)),
    ]
    table = np.column_stack([first_frame + np.arange(frames), time_s,
                             xyz.reshape(frames, markers * 3)])
    with atomic_write(path, encoding='utf-8', newline='\n') as handle:
        handle.write('\n'.join(header) + '\n')
        for text in table_text(table, '%d\t' + _row_format(
                1 + markers * 3), NAN_TEXT):
            handle.write(text)


def write_mot(path, time_s, names: Sequence[str], values) -> None:
    """Write angles over time as an OpenSim .mot file, as Sports2D's
    ``make_mot_with_angles`` writes one.

    The header: ``Coordinates``, ``version=1``, ``nRows=T``,
    ``nColumns=A`` (the angles, without the time column, as Sports2D
    counts them; OpenSim does not check it), ``inDegrees=yes``, an empty
    line, ``Units are S.I. units (second, meters, Newtons, ...)``, the
    line on ``inDegrees``, an empty line, ``endheader``, then
    ``time\\t<name>\\t...``. Then one line per frame: the time and the A
    values, tab-separated. Numbers and NaN as the module's docstring says.

    Args:
        path: the file to write (replaced whole, or left as it was when
            this fails).
        time_s: (T,) seconds, finite and strictly increasing; T >= 1.
        names: A column names (Sports2D's angle names, such as ``right
            knee``), distinct, without tabs or line breaks.
        values: (T, A) degrees; NaN where missing; no infinities.
    Raises:
        ValueError: shapes, values or names as above are not so.
        OSError: the file cannot be written.
    """
    time_s = _times(time_s)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != len(time_s):
        raise ValueError(f'values has shape {values.shape}, not (T, A) with '
                         f'T = {len(time_s)} times')
    names = _names(names, values.shape[1], 'column')
    _no_infinity(values, 'values')
    header = [
        'Coordinates',
        'version=1',
        f'nRows={values.shape[0]}',
        f'nColumns={values.shape[1]}',
        'inDegrees=yes',
        '',
        'Units are S.I. units (second, meters, Newtons, ...)',
        "If the header above contains a line with 'inDegrees', this "
        'indicates whether rotational values are in degrees (yes) or '
        'radians (no).',
        '',
        'endheader',
        '\t'.join(['time'] + names),
    ]
    table = np.column_stack([time_s, values])
    with atomic_write(path, encoding='utf-8', newline='\n') as handle:
        handle.write('\n'.join(header) + '\n')
        for text in table_text(table, _row_format(table.shape[1]),
                               NAN_TEXT):
            handle.write(text)


def _row_format(count: int) -> str:
    """``count`` floats tab-separated, then a line end: ``repr``
    (exact); NaN is written :data:`NAN_TEXT` (:func:`table_text`)."""
    return '\t'.join(['%r'] * count) + '\n'


def _times(time_s) -> np.ndarray:
    time_s = np.asarray(time_s, dtype=np.float64)
    if time_s.ndim != 1 or len(time_s) == 0:
        raise ValueError(f'time_s has shape {time_s.shape}, not (T,) with '
                         'T >= 1')
    if not np.isfinite(time_s).all():
        raise ValueError('time_s has NaN or infinite times')
    if (np.diff(time_s) <= 0).any():
        raise ValueError('time_s does not strictly increase')
    return time_s


def _names(names: Sequence[str], count: int, what: str) -> List[str]:
    names = [str(name) for name in names]
    if len(names) != count:
        raise ValueError(f'{len(names)} {what} names for {count} {what}s')
    if len(set(names)) != len(names):
        raise ValueError(f'{what} names are not distinct: {names}')
    for name in names:
        if not name or name != name.strip() or any(
                character in name for character in '\t\r\n'):
            raise ValueError(f'{what} name {name!r}: empty, or with tabs, '
                             'line breaks or spaces around it')
    return names


def _no_infinity(array: np.ndarray, what: str) -> None:
    if np.isinf(array).any():
        raise ValueError(f'{what} has infinite values')
