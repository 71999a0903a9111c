"""The .trc and .mot files of :mod:`pose_suite.movement.opensim_files`, read
by OpenSim 4.6's own adapters (in a venv of its own:
:mod:`opensim_reader`, marked ``install``), by Pose2Sim's ``read_trc`` and
``read_mot``, and compared with what Sports2D's own ``make_trc_with_trc_data``
and ``make_mot_with_angles`` write of the same data (taken from its
``process.py`` as :mod:`sports2d_reference` does): every value equal (the
very same doubles in OpenSim, within 1e-9 relative in Pose2Sim, whose
pandas parser may be a few units off in the last place), NaN where NaN was
written, the header line for line.

The series: 50 frames of all 131 markers of the whole-body model, one in
pixels from frame 0 at 30 Hz, one in metres from frame 7 at 29.97 Hz (as
Sports2D's file in metres, whose first rows are trimmed), and 50 frames of
Sports2D's angles; each with NaN in a few places, among them the first
value of the first row and the last values of some rows, and with numbers
whose shortest text is long or in exponent form.
"""
import math

import numpy as np
import pandas as pd
import pytest
from anytree import RenderTree
from opensim_reader import OpenSimError, read_with_opensim
from Pose2Sim.common import read_mot, read_trc
from Pose2Sim.skeletons import COCO_133
from sports2d_reference import process_functions

from pose_suite.movement import opensim_files
from pose_suite.movement.opensim_files import (marker_names, write_mot,
                                               write_trc)
from pose_suite.outputs.angles import DEFINITIONS
from pose_suite.outputs.report_pictures import wholebody_meta

FRAMES = 50
#: How close Pose2Sim's readers come: pandas' default float parser is not
#: always correctly rounded (within a few units in the last place).
#: OpenSim's ``std::stod`` is: what it reads must be the very numbers.
PANDAS_RTOL = 1e-9
#: (units, rate in Hz, first frame) of the two .trc series.
SERIES = {'px': ('px', 30, 0), 'm': ('m', 29.97, 7)}
SPORTS2D = process_functions(
    ('trc_data_from_XYZtime', 'make_trc_with_trc_data',
     'make_mot_with_angles'), {'pd': pd, 'np': np})


@pytest.fixture(scope='module')
def keypoint_names():
    meta = wholebody_meta()
    return [meta['keypoint_id2name'][i] for i in range(133)]


@pytest.fixture(scope='module')
def markers(keypoint_names):
    return marker_names(keypoint_names)


def _awkward(rng, values):
    """NaN and awkward numbers put in ``values`` (T, C) in place: NaN in
    the first column of the first row and the last columns of rows 3 and
    4 (a line that ends with missing values), and ~4 % elsewhere; numbers
    whose shortest text is long or in exponent form."""
    values[0, 0] = np.nan
    values[3, -3:] = np.nan
    values[4, -1] = np.nan
    values[rng.random(values.shape) < 0.04] = np.nan
    values[1, 1:7] = [1e-7, -0.0, 1e16, 123456789.12345679, 0.1 + 0.2,
                      -2.5e-300]


def _series(markers, units):
    """(time (T,), xyz (T, M, 3), names, rate, first frame) of one
    series."""
    units, rate, first = SERIES[units]
    rng = np.random.default_rng(len(units))
    scale = (1920.0, 1080.0, 50.0) if units == 'px' else (2.0, 2.0, 2.0)
    xyz = rng.uniform(-1, 1, (FRAMES, len(markers), 3)) * scale
    flat = xyz.reshape(FRAMES, -1)
    _awkward(rng, flat)
    time = np.linspace(first / rate, (first + FRAMES - 1) / rate, FRAMES)
    return time, xyz, list(markers.values()), rate, first


@pytest.fixture(scope='module')
def angles():
    """(time (T,), names, values (T, A)) of Sports2D's angles."""
    rng = np.random.default_rng(3)
    names = list(DEFINITIONS)
    values = rng.uniform(-180, 180, (FRAMES, len(names)))
    _awkward(rng, values)
    return np.arange(FRAMES) / 30, names, values


def _equal(read, written, rtol=0.0):
    """``read`` equals ``written`` (within ``rtol``), NaN exactly where
    NaN."""
    read = np.asarray(read, dtype=np.float64)
    written = np.asarray(written, dtype=np.float64)
    assert read.shape == written.shape
    assert (np.isnan(read) == np.isnan(written)).all(), \
        np.argwhere(np.isnan(read) != np.isnan(written))[:5]
    np.testing.assert_allclose(read, written, rtol=rtol, atol=0)
    # the same sign of zero, too
    assert (np.signbit(read) == np.signbit(written)).all()


def _sports2d_name_of(our_name):
    """What Sports2D calls our point ``our_name``, from their meanings:
    ``right_ankle`` RAnkle, ``right_thumb2`` RThumb (its second thumb
    joint), ``right_forefinger1`` RIndex, ``face-17`` EyebrowR1 (the
    68-point face: jaw 0-16, right then left eyebrow 17-26, nose 27-35,
    right then left eye 36-47, mouth 48-67)."""
    if our_name.startswith('face-'):
        index = int(our_name[5:])
        for first, part in ((48, 'Mouth'), (42, 'LEye'), (36, 'REye'),
                            (27, 'Nose'), (22, 'EyebrowL'),
                            (17, 'EyebrowR'), (0, 'Jaw')):
            if index >= first:
                return f'{part}{index - first + 1}'
    if our_name == 'nose':
        return 'Nose'
    side, rest = our_name.split('_', 1)
    side = {'left': 'L', 'right': 'R'}[side]
    hand = {'thumb1': 'Thumb1', 'thumb2': 'Thumb', 'forefinger1': 'Index',
            'pinky_finger1': 'Pinky'}
    if rest in hand:
        return side + hand[rest]
    rest = rest.replace('forefinger', 'index').replace('_finger', '')
    return side + ''.join(word.capitalize() for word in rest.split('_'))


# --- marker names -----------------------------------------------------------

def test_marker_names_are_sports2d_whole_body(keypoint_names, markers):
    """Sports2D's markers of its whole_body mode (Pose2Sim's COCO_133, the
    nodes with an id, in RenderTree order, as Sports2D lists them), each on
    the point of ours with that index, which is the point it names."""
    skeleton = [(node.id, node.name) for _, _, node in RenderTree(COCO_133)
                if node.id is not None]
    assert list(markers.items()) == skeleton
    assert len(markers) == 131
    assert set(range(133)) - set(markers) == {
        keypoint_names.index('left_hand_root'),
        keypoint_names.index('right_hand_root')}
    for index, name in markers.items():
        assert _sports2d_name_of(keypoint_names[index]) == name, \
            (index, keypoint_names[index], name)
    assert markers[keypoint_names.index('right_ankle')] == 'RAnkle'
    assert markers[keypoint_names.index('left_forefinger1')] == 'LIndex'


def test_marker_names_refuse_another_model(keypoint_names):
    with pytest.raises(ValueError, match='COCO-WholeBody'):
        marker_names(keypoint_names[:17])  # COCO's body only
    swapped = list(keypoint_names)
    swapped[15], swapped[16] = swapped[16], swapped[15]
    with pytest.raises(ValueError, match='COCO-WholeBody'):
        marker_names(swapped)


# --- OpenSim 4.6 --------------------------------------------------------------

@pytest.mark.install
@pytest.mark.parametrize('units', SERIES)
def test_trc_read_by_opensim(tmp_path, markers, units):
    time, xyz, names, rate, first = _series(markers, units)
    path = tmp_path / f'person00_{units}.trc'
    write_trc(path, time, xyz, names, rate, units, first_frame=first)
    read = read_with_opensim(path)
    assert read['opensim_version'].startswith('4.6-')
    assert read['adapter_tables'] == ['markers']
    assert read['labels'] == names
    _equal(read['times'], time)
    _equal(read['values'], xyz)
    assert read['metadata'] == {
        'header': f'PathFileType\t4\t(X/Y/Z)\t{path}',
        'DataRate': str(rate), 'CameraRate': str(rate),
        'OrigDataRate': str(rate), 'NumFrames': str(FRAMES),
        'OrigNumFrames': str(FRAMES), 'NumMarkers': str(len(names)),
        'Units': units, 'OrigDataStartFrame': '0'}


@pytest.mark.install
def test_mot_read_by_opensim(tmp_path, angles):
    time, names, values = angles
    path = tmp_path / 'person00_angles.mot'
    write_mot(path, time, names, values)
    read = read_with_opensim(path)
    assert read['labels'] == names
    _equal(read['times'], time)
    _equal(read['values'], values)
    metadata = read['metadata']
    assert (metadata['inDegrees'], metadata['nRows'],
            metadata['nColumns']) == ('yes', str(FRAMES), str(len(names)))


@pytest.mark.install
def test_opensim_refuses_a_row_ending_in_empty_fields(tmp_path, markers,
                                                      angles):
    """Why NaN is written ``NaN``: Sports2D's empty fields, on a row whose
    last values are missing, make OpenSim refuse the whole file; the same
    data as ours is read."""
    time, xyz, names, rate, first = _series(markers, 'm')
    sports2d = tmp_path / 'sports2d.trc'
    _sports2d_trc(sports2d, time, xyz, names, rate, first)
    with pytest.raises(OpenSimError, match='Unexpected number of columns '
                       f'in line {_first_row_ending_empty(sports2d, 5)}'):
        read_with_opensim(sports2d)
    ours = tmp_path / 'ours.trc'
    write_trc(ours, time, xyz, names, rate, 'm', first_frame=first)
    _equal(read_with_opensim(ours)['values'], xyz)

    time, names, values = angles
    sports2d = tmp_path / 'sports2d.mot'
    SPORTS2D['make_mot_with_angles'](pd.DataFrame(values, columns=names),
                                     pd.Series(time), str(sports2d))
    with pytest.raises(OpenSimError, match='Unexpected number of columns '
                       f'in line {_first_row_ending_empty(sports2d, 11)}'):
        read_with_opensim(sports2d)


def _first_row_ending_empty(path, header_lines):
    """The line number OpenSim gives the first data line of ``path`` that
    ends with an empty field (its count: the first data line is
    ``header_lines`` + 1)."""
    data = path.read_text().split('\n')[header_lines:]
    return header_lines + 1 + next(
        row for row, line in enumerate(data) if line.endswith('\t'))


# --- Pose2Sim ---------------------------------------------------------------

@pytest.mark.parametrize('units', SERIES)
def test_trc_read_by_pose2sim(tmp_path, markers, units):
    time, xyz, names, rate, first = _series(markers, units)
    path = tmp_path / f'person00_{units}.trc'
    write_trc(path, time, xyz, names, rate, units, first_frame=first)
    coordinates, frames, times, read_names, header = read_trc(path)
    assert read_names == names
    assert list(coordinates.columns) == [n for n in names for _ in 'xyz']
    assert frames.tolist() == list(range(first, first + FRAMES))
    _equal(times, time, PANDAS_RTOL)
    _equal(coordinates.to_numpy(), xyz.reshape(FRAMES, -1), PANDAS_RTOL)
    assert header[2].split('\t')[4] == units


def test_mot_read_by_pose2sim(tmp_path, angles):
    time, names, values = angles
    path = tmp_path / 'person00_angles.mot'
    write_mot(path, time, names, values)
    read, times, header = read_mot(path)
    assert list(read.columns) == names
    _equal(times, time, PANDAS_RTOL)
    _equal(read.to_numpy(), values, PANDAS_RTOL)
    assert header[-1] == 'endheader\n'


# --- Sports2D's own writers ---------------------------------------------------

def _sports2d_trc(path, time, xyz, names, rate, first):
    """Sports2D's .trc of the series: its DataFrames as its ``process``
    builds them (index = frame numbers), through ``trc_data_from_XYZtime``
    and ``make_trc_with_trc_data``."""
    index = pd.RangeIndex(first, first + len(time))
    X, Y, Z = (pd.DataFrame(xyz[..., axis], columns=names, index=index)
               for axis in range(3))
    trc_data = SPORTS2D['trc_data_from_XYZtime'](
        X, Y, Z, pd.Series(time, index=index, name='time'))
    SPORTS2D['make_trc_with_trc_data'](trc_data, str(path), fps=rate)


def _assert_same_body(ours, theirs, skip_columns=0):
    """Data lines equal field by field: the same text (Python's shortest
    repr, as pandas writes), ``NaN`` where Sports2D leaves the field
    empty."""
    assert len(ours) == len(theirs) == FRAMES
    for our_line, their_line in zip(ours, theirs):
        our_fields, their_fields = our_line.split('\t'), their_line.split('\t')
        assert len(our_fields) == len(their_fields)
        for our, their in zip(our_fields, their_fields):
            if their == '':
                assert our == 'NaN'
            else:
                assert our == their
                assert math.copysign(1, float(our)) == \
                    math.copysign(1, float(their))


@pytest.mark.parametrize('units', SERIES)
def test_trc_equals_sports2d(tmp_path, markers, units):
    """Line for line in the header (but for ``Units``, which Sports2D
    writes ``m`` also in pixels), value for value in the body."""
    time, xyz, names, rate, first = _series(markers, units)
    path = tmp_path / f'person00_{units}.trc'
    _sports2d_trc(path, time, xyz, names, rate, first)
    theirs = path.read_text().split('\n')
    write_trc(path, time, xyz, names, rate, units, first_frame=first)
    ours = path.read_text().split('\n')
    assert ours[-1] == theirs[-1] == ''
    fields = theirs[2].split('\t')
    assert fields[4] == 'm'
    theirs[2] = '\t'.join(fields[:4] + [units] + fields[5:])
    assert ours[:5] == theirs[:5]
    _assert_same_body(ours[5:-1], theirs[5:-1])
    assert [line.split('\t')[0] for line in ours[5:-1]] == \
        [str(frame) for frame in range(first, first + FRAMES)]


def test_mot_equals_sports2d(tmp_path, angles):
    time, names, values = angles
    path = tmp_path / 'person00_angles.mot'
    SPORTS2D['make_mot_with_angles'](pd.DataFrame(values, columns=names),
                                     pd.Series(time), str(path))
    theirs = path.read_text().split('\n')
    write_mot(path, time, names, values)
    ours = path.read_text().split('\n')
    assert ours[-1] == theirs[-1] == ''
    assert ours[:11] == theirs[:11]
    _assert_same_body(ours[11:-1], theirs[11:-1])


# --- what is refused, and a failed write ---------------------------------------

def test_what_is_refused(tmp_path, markers):
    time, xyz, names, rate, first = _series(markers, 'px')
    path = tmp_path / 'x.trc'
    cases = [
        ({'units': 'mm'}, 'units'),
        ({'rate_hz': 0}, 'rate_hz'),
        ({'time_s': time[::-1]}, 'increase'),
        ({'time_s': np.r_[np.nan, time[1:]]}, 'NaN'),
        ({'time_s': time[:0], 'xyz': xyz[:0]}, 'T >= 1'),
        ({'xyz': xyz[..., :2]}, r'\(T, M, 3\)'),
        ({'xyz': np.where(np.arange(3) == 2, np.inf, xyz)}, 'infinite'),
        ({'names': names[:-1]}, 'names for'),
        ({'names': names[:-1] + ['a\tb']}, 'tabs'),
        ({'names': names[:-1] + [names[0]]}, 'distinct'),
    ]
    arguments = dict(time_s=time, xyz=xyz, names=names, rate_hz=rate,
                     units='px')
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            write_trc(path, **(arguments | change))
    assert not path.exists()
    with pytest.raises(ValueError, match='infinite'):
        write_mot(path, time, ['a'], np.full((FRAMES, 1), -np.inf))
    with pytest.raises(ValueError, match=r'\(T, A\)'):
        write_mot(path, time, ['a'], np.zeros(FRAMES))


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path, markers,
                                                  monkeypatch):
    time, xyz, names, rate, first = _series(markers, 'px')
    path = tmp_path / 'x.trc'
    write_trc(path, time, xyz, names, rate, 'px')
    before = path.read_bytes()
    real = opensim_files.table_text

    def fails_after_20_rows(table, row_format, nan_text):
        for text in real(table[:20], row_format, nan_text):
            yield text  # written, then the disk is full
        raise OSError('disk full')

    monkeypatch.setattr(opensim_files, 'table_text', fails_after_20_rows)
    with pytest.raises(OSError, match='disk full'):
        write_trc(path, time, xyz * 2, names, rate, 'px')
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['x.trc']
