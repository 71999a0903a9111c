"""The package's layout holds: imports run one way between its rooms, no
module imports itself back through a circle, and long modules say why.

Read from the source with ``ast`` (imports inside functions included), so
an import that runs against the order fails here even when no test happens
to execute it.
"""
import ast
import re
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / 'pose_suite'
#: The root scripts, by the room they belong to.
SCRIPTS = {'detection_service': 'models', 'pose_extraction_service': 'models',
           'pose_analysis_service': 'entry', 'creating_config': 'entry'}
#: What each room may import (besides itself). The order of the package's
#: docstring: entry -> batch -> service -> movement -> outputs -> media;
#: service -> models; all -> config -> errors.
ALLOWED = {
    'errors': set(),
    'config': {'errors'},
    'media': {'config', 'errors'},
    'runtimes': {'errors'},
    'models': {'runtimes', 'config', 'errors'},
    'outputs': {'media', 'config', 'errors'},
    'movement': {'outputs', 'config', 'errors'},
    'service': {'movement', 'outputs', 'media', 'models', 'runtimes',
                'config', 'errors'},
    'batch': {'service', 'movement', 'outputs', 'media', 'models',
              'runtimes', 'config', 'errors'},
    'entry': {'batch', 'service', 'movement', 'outputs', 'media', 'models',
              'runtimes', 'config', 'errors'},
}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def room_of(module: str):
    """The room of a module of ours (None: a library or the package
    itself)."""
    if module in SCRIPTS:
        return SCRIPTS[module]
    parts = module.split('.')
    if parts[0] != 'pose_suite' or len(parts) == 1:
        return None
    if parts[1] in ('cli', 'evaluate'):
        return 'entry'
    return parts[1] if parts[1] in ALLOWED else 'unknown: ' + parts[1]


def our_modules():
    files = sorted(PACKAGE.rglob('*.py')) + [ROOT / f'{name}.py'
                                             for name in SCRIPTS]
    return {module_name(path): path for path in files}


MODULES = our_modules()


def imports_of(module: str, path: Path):
    """``(imported module, line)`` for every import of ours in ``path``,
    relative ones resolved; ``from a import b`` names ``a.b`` when that is
    a module of ours."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == '__init__.py' \
        else module.rpartition('.')[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')
                anchor = anchor[:len(anchor) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f'{base}.{alias.name}'
                yield (full if full in MODULES else base), node.lineno


def edges():
    """``(importer, imported, line)`` between modules of ours."""
    for module, path in MODULES.items():
        for imported, line in imports_of(module, path):
            if imported in MODULES or room_of(imported):
                yield module, imported, line


def test_every_module_is_in_a_room():
    rooms = {module: room_of(module) for module in MODULES}
    unknown = {module: room for module, room in rooms.items()
               if room is None and module != 'pose_suite'
               or room and room.startswith('unknown')}
    assert not unknown, unknown
    # Each room is a folder with a docstring saying what it owns and what
    # it may import.
    for room in set(ALLOWED) - {'errors', 'entry'}:
        init = PACKAGE / room / '__init__.py'
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring and 'Owns:' in docstring and \
            'May import:' in docstring, init


def test_imports_run_one_way():
    against = [f'{MODULES[importer].relative_to(ROOT)}:{line}: {importer} '
               f'({room_of(importer)}) imports {imported} '
               f'({room_of(imported)})'
               for importer, imported, line in edges()
               if room_of(importer) and room_of(imported)
               and room_of(importer) != room_of(imported)
               and room_of(imported) not in ALLOWED[room_of(importer)]]
    assert not against, '\n'.join(against)


def test_no_import_circle():
    graph = {}
    for importer, imported, _ in edges():
        if imported in MODULES and imported != importer:
            graph.setdefault(importer, set()).add(imported)
    done, path, circles = set(), [], []

    def visit(module):
        if module in path:
            circles.append(path[path.index(module):] + [module])
            return
        if module in done:
            return
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            visit(imported)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    assert not circles, [' -> '.join(circle) for circle in circles]


def test_long_modules_say_why():
    long = []
    for module, path in MODULES.items():
        lines = len(path.read_text().splitlines())
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ''
        if lines > MAX_LINES and not re.search(
                rf'[Ll]onger than {MAX_LINES} lines', docstring):
            long.append(f'{module}: {lines} lines')
    assert not long, long


@pytest.mark.parametrize('room', sorted(set(ALLOWED) - {'errors', 'entry'}))
def test_docs_layout_names_each_room(room):
    development = (ROOT / 'docs' / 'development.md').read_text()
    layout = development.split('## Layout', 1)[1].split('\n## ', 1)[0]
    assert f'`pose_suite/{room}/`' in layout, room
