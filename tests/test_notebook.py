"""examples/quickstart.ipynb, executed whole by a real Jupyter kernel
(nbclient, ipykernel) running this test's Python, with the test's
random-weight checkpoints in place of the real ones (its ``parameters``
cell), on the sample video: what it prints and draws is checked against
the result JSON it wrote. The committed notebook holds no outputs, and a
cell that raises fails the run."""
import ast
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

sys.path.insert(0, str(ROOT / 'examples'))
from strip_outputs import stripped  # noqa: E402

NOTEBOOK = ROOT / 'examples' / 'quickstart.ipynb'
#: Seconds a cell may take (the analysis cell loads the models).
CELL_TIMEOUT = 300
PNG = 'iVBORw0KGgo'  # b'\x89PNG\r\n\x1a\n' in base64
#: The parameters naming the models.
MODEL_KEYS = ('det_config', 'det_checkpoint', 'pose_config',
              'pose_checkpoint')


def parameters_cell(notebook) -> nbformat.NotebookNode:
    """The notebook's one cell tagged ``parameters``."""
    cells = [cell for cell in notebook.cells
             if 'parameters' in cell.metadata.get('tags', [])]
    assert len(cells) == 1, 'one cell tagged "parameters"'
    return cells[0]


def with_parameters(notebook, values: dict) -> nbformat.NotebookNode:
    """A copy of ``notebook`` whose parameters cell assigns ``values``
    instead of its own for those names (each must be one of its names)."""
    notebook = nbformat.from_dict(notebook)
    cell = parameters_cell(notebook)
    names = {target.id for node in ast.parse(cell.source).body
             if isinstance(node, ast.Assign) for target in node.targets}
    assert set(values) <= names, set(values) - names
    cell.source += ''.join(f'\n{name} = {value!r}'
                           for name, value in values.items())
    return notebook


def execute(notebook, cwd: Path) -> nbformat.NotebookNode:
    """Run every cell of ``notebook`` in a new kernel started in ``cwd``
    (the ipykernel of this test's Python: jupyter_client turns the native
    ``python3`` spec into ``sys.executable``; no kernelspec is installed);
    one cell appended last prints the kernel's ``sys.prefix``. Returns the
    executed notebook; a cell that raises raises CellExecutionError."""
    notebook = nbformat.from_dict(notebook)
    notebook.cells.append(nbformat.v4.new_code_cell(
        'import sys; print("kernel prefix:", sys.prefix)'))
    NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name='python3',
                   resources={'metadata': {'path': str(cwd)}}).execute()
    return notebook


def cell_of(notebook, cell_id: str) -> nbformat.NotebookNode:
    return next(cell for cell in notebook.cells if cell.get('id') == cell_id)


def printed(cell) -> str:
    return ''.join(output.get('text', '') for output in cell.outputs
                   if output.output_type == 'stream' and
                   output.name == 'stdout')


def pictures(cell) -> list:
    return [output.data['image/png'] for output in cell.outputs
            if 'image/png' in output.get('data', {})]


#: A cell run after the notebook's: the data of the lines its wrist plot
#: (axes ax_x, ax_y) and knee plot (ax) drew, as JSON (NaN: null).
PLOTTED = """import json as _json
def _lines(axis):
    return [[[None if v != v else float(v) for v in line.get_xdata()],
             [None if v != v else float(v) for v in line.get_ydata()]]
            for line in axis.lines]
print(_json.dumps({'wrist x': _lines(ax_x), 'wrist y': _lines(ax_y),
                   'knee': _lines(ax)}))"""


@pytest.fixture(scope='module')
def executed(model_files, tmp_path_factory):
    """The notebook run from examples/ on the test's models, thresholds 0
    (random weights score low), output in a folder of the test's; and what
    its plots drew (:data:`PLOTTED`, a cell taken out again)."""
    output = tmp_path_factory.mktemp('notebook') / 'out'
    notebook = with_parameters(nbformat.read(NOTEBOOK, as_version=4), {
        **{key: str(model_files[key]) for key in MODEL_KEYS},
        'output_folder': str(output), 'device': 'cpu', 'bbox_thr': 0.0,
        'kpt_thr': 0.0})
    notebook.cells.append(nbformat.v4.new_code_cell(PLOTTED, id='plotted'))
    notebook = execute(notebook, ROOT / 'examples')
    probe = notebook.cells.pop(-2)
    assert probe.id == 'plotted'
    return notebook, output, json.loads(printed(probe))


def test_the_notebook_runs_in_this_venvs_kernel(executed):
    notebook, output, _ = executed
    assert printed(notebook.cells[-1]).split() == ['kernel', 'prefix:',
                                                   sys.prefix]
    assert printed(cell_of(notebook, 'setup')).splitlines() == [
        f'project: {ROOT}',
        f'video:   {ROOT / "data" / "football_5frames_720p.mp4"}',
        f'output:  {output}']


def test_what_the_notebook_shows_is_the_result(executed):
    notebook, output, _ = executed
    result_file = output / 'football_5frames_720p.mp4.json'
    assert printed(cell_of(notebook, 'analyse')) == f'result: {result_file}\n'
    result = json.loads(result_file.read_text())
    frames = result['frames']
    tracks = sorted({person['track_id'] for frame in frames
                     for person in frame['persons']})
    assert len(frames) == 5 and len(tracks) >= 2  # two boxes a frame
    lines = printed(cell_of(notebook, 'read')).splitlines()
    assert lines[:4] == [
        f'keypoints shape: ({len(frames)}, {len(tracks)}, 133, 3)',
        f'frames: {[frame["frame_index"] for frame in frames]}',
        f'times (s): {[round(frame["timestamp_s"], 3) for frame in frames]}',
        f'track ids: {tracks}']
    assert lines[4] == 'video: 1280 x 720 at {} fps'.format(
        round(result['meta']['fps'], 2))
    table = cell_of(notebook, 'table')
    assert printed(table) == ("columns: ['frame_index', 'timestamp_s', "
                              "'track_id', 'keypoint', 'x', 'y', 'score']\n")
    # The tables' first row: frame 0's person of the lowest track id.
    first = min(frames[0]['persons'], key=lambda person: person['track_id'])
    head = table.outputs[-1].data['text/plain'].splitlines()
    assert head[1].split()[:5] == ['0', '0', '0.0', str(first['track_id']),
                                   'nose']
    assert float(head[1].split()[5]) == pytest.approx(
        first['keypoints'][0][0], abs=1e-3)
    # Seen: scored at least kpt_thr (0 here; random weights also score
    # below 0).
    wrist = result['meta']['keypoint_names'].index('right_wrist')
    seen = sum(person['keypoint_scores'][wrist] >= 0 for frame in frames
               for person in frame['persons'])
    assert seen >= 2
    assert printed(cell_of(notebook, 'wrist-plot')) == (
        f'right wrist seen in {seen} of {len(frames) * len(tracks)} '
        'frame-person slots\n')
    knee = cell_of(notebook, 'knee-plot')
    knees = [person['angles']['right knee'] for frame in frames
             for person in frame['persons']]
    assert printed(knee) == (
        f'angles: {result["meta"]["angles"]}\n'
        f'right knee: {sum(v is not None for v in knees)} values in '
        f'{len(knees)} person-frames\n')
    knee_head = knee.outputs[-1].data['text/plain'].splitlines()
    assert knee_head[0].split() == ['frame_index', 'timestamp_s', 'track_id',
                                    'right', 'knee', 'left', 'knee']
    right_knee = first['angles']['right knee']  # None: NaN in the table
    assert float(knee_head[1].split()[4]) == pytest.approx(
        float('nan') if right_knee is None else right_knee, abs=1e-3,
        nan_ok=True)
    overlay = cell_of(notebook, 'overlay-frame')
    assert printed(overlay) == 'overlay: overlay.mp4 5 frames of 1280 x 720\n'
    assert (output / 'overlay.mp4').is_file()
    for cell_id in ('wrist-plot', 'knee-plot', 'overlay-frame'):
        drawn = pictures(cell_of(notebook, cell_id))
        assert len(drawn) == 1 and drawn[0].startswith(PNG), cell_id


def test_the_plots_draw_the_right_wrist_and_knee(executed):
    """The wrist plot draws, one line a track, the right wrist's x and y
    (where scored at least kpt_thr, 0 here; NaN where the track is not
    in the frame) against time; the knee plot each track's right-knee
    angle at the frames it is in: the figures' lines against the JSON."""
    _, output, plotted = executed
    result = json.loads((output / 'football_5frames_720p.mp4.json')
                        .read_text())
    frames = result['frames']
    wrist = result['meta']['keypoint_names'].index('right_wrist')
    tracks = sorted({person['track_id'] for frame in frames
                     for person in frame['persons']})
    times = [frame['timestamp_s'] for frame in frames]
    assert len(plotted['wrist x']) == len(plotted['knee']) == len(tracks)
    for column, track in enumerate(tracks):
        persons = [next((p for p in frame['persons']
                         if p['track_id'] == track), None)
                   for frame in frames]
        for axis, name in enumerate(('wrist x', 'wrist y')):
            assert plotted[name][column] == [times, [
                p['keypoints'][wrist][axis]
                if p and p['keypoint_scores'][wrist] >= 0 else None
                for p in persons]], (name, track)
        assert plotted['knee'][column] == [
            [t for t, p in zip(times, persons) if p],
            [p['angles']['right knee'] for p in persons if p]], track
    assert any(value is not None for line in plotted['knee']
               for value in line[1])


def test_a_raising_cell_fails_the_run(model_files):
    """The same harness, from the project folder, on a copy with a cell
    that raises after the set-up (which found the project folder)."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    at = notebook.cells.index(cell_of(notebook, 'setup')) + 1
    notebook.cells.insert(at, nbformat.v4.new_code_cell(
        'assert PROJECT.name\nraise RuntimeError("the inserted failure")'))
    with pytest.raises(CellExecutionError, match='the inserted failure'):
        execute(with_parameters(notebook, {key: str(model_files[key]) for key
                                           in MODEL_KEYS}), ROOT)


def test_the_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == 'code']
    assert code and all(cell.outputs == [] and cell.execution_count is None
                        for cell in code)
    assert 'widgets' not in notebook.metadata
    assert stripped(notebook) == notebook
    # And the file is as nbformat writes it (what strip_outputs.py writes).
    assert NOTEBOOK.read_text(encoding='utf-8') == \
        nbformat.writes(notebook) + '\n'


def test_strip_outputs_clears_an_executed_notebook(executed, tmp_path):
    notebook, _, _ = executed
    copy = tmp_path / 'run.ipynb'
    nbformat.write(notebook, copy)
    from strip_outputs import main
    assert main(['--check', str(copy)]) == 1
    assert main([str(copy)]) == 0
    assert main(['--check', str(copy)]) == 0
    again = nbformat.read(copy, as_version=4)
    original = nbformat.read(NOTEBOOK, as_version=4)
    assert again.cells[-1].outputs == []  # the cell execute() adds
    assert notebook.metadata.language_info != original.metadata.language_info
    assert again.metadata == original.metadata  # a run leaves no diff
    assert [cell for cell in again.cells[:-1] if cell.id != 'parameters'] == \
        [cell for cell in original.cells if cell.id != 'parameters']
