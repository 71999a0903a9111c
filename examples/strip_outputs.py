"""Strip a notebook's outputs before committing it: no outputs, no
execution counts, no run metadata (timings, widget state, the kernel's
language details).

    .venv/bin/python examples/strip_outputs.py                # examples/*.ipynb
    .venv/bin/python examples/strip_outputs.py my.ipynb       # these
    .venv/bin/python examples/strip_outputs.py --check        # exit 1 if any has outputs

Needs nbformat (tests/requirements.txt; `make test` installs it).
tests/test_notebook.py checks that the committed notebooks are stripped.
"""
import argparse
import sys
from pathlib import Path

import nbformat

#: Cell metadata a run adds (nbclient's timings, Jupyter's view state).
RUN_CELL_METADATA = ('execution', 'collapsed', 'scrolled', 'ExecuteTime')
#: Notebook metadata a run adds (ipywidgets' state).
RUN_NOTEBOOK_METADATA = ('widgets',)


def stripped(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with every code cell's outputs and execution
    count cleared and the run's metadata removed."""
    notebook = nbformat.from_dict(notebook)  # a deep copy
    for key in RUN_NOTEBOOK_METADATA:
        notebook.metadata.pop(key, None)
    # A run fills in the kernel's Python version, mimetype, lexer...: keep
    # only the language's name, so that a run leaves no diff in git.
    if 'language_info' in notebook.metadata:
        notebook.metadata.language_info = {
            'name': notebook.metadata.language_info.get('name', 'python')}
    for cell in notebook.cells:
        for key in RUN_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == 'code':
            cell.outputs, cell.execution_count = [], None
    return notebook


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('notebooks', nargs='*', type=Path,
                        default=sorted(Path(__file__).parent.glob('*.ipynb')))
    parser.add_argument('--check', action='store_true',
                        help='change nothing; exit 1 naming each notebook '
                             'that is not stripped')
    args = parser.parse_args(argv)
    unstripped = []
    for path in args.notebooks:
        notebook = nbformat.read(path, as_version=4)
        clean = stripped(notebook)
        if clean == notebook:
            continue
        unstripped.append(path)
        if not args.check:
            nbformat.write(clean, path)
            print(f'stripped {path}')
    if args.check and unstripped:
        for path in unstripped:
            print(f'not stripped: {path} (run {Path(__file__).name} on it)',
                  file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
