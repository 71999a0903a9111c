"""The documentation's commands and flags checked against the real
command-line parsers and the Makefile (the keys: :mod:`doc_keys`).

Each ``check_*`` function takes the pages (``{name: text}``, see
:mod:`doc_markdown`) and returns a list of problems, one line each
(``'README.md:12: ...'``); an empty list means the pages are right.

The parsers come from the code, never from a list here: an entry point's
``build_parser()`` where it has one, else the parser its ``main`` builds
and parses with, caught at its ``parse_args`` call before any work
(:func:`parser_of`). The only lists here are of other tools' flags
(:data:`FOREIGN_FLAGS`), keyed by the tool.
"""
import argparse
import contextlib
import importlib
import importlib.util
import io
import re
import runpy
import shutil
import sys
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from doc_markdown import (FLAG, NEEDS, SHELL_LANGUAGES, Command, blocks_of,
                          command_lines, flags_named, parse_command,
                          shell_commands)
from doc_values import command_value_problem

ROOT = Path(__file__).resolve().parents[1]
#: The scripts every one of whose flags the pages must name.
DOCUMENTED_IN_FULL = ('creating_config.py', 'pose_analysis_service.py')
#: Other tools' flags the pages may name, by tool: in a command of that
#: tool (``pip install ...``, ``python -m pip ...``) only its own; in prose,
#: any of them.
FOREIGN_FLAGS = {
    'pip': {'--no-build-isolation', '--no-deps', '--no-index'},
    'venv': {'--system-site-packages'},
    'pytest': {'--strict-markers'},
    'ray start': {'--head', '--port', '--node-ip-address', '--address'},
    'mkdocs': {'--strict'},
    "mmpose's topdown_demo_with_mmdet.py": {'--save-predictions'},
    "OpenPose's demo": {'--write_json'},
    'the example of an unknown flag in the error it gets': {'--bogus'},
}
#: First words of a command that runs in a shell but names no flag here.
SHELL_WORDS = {'cd', 'export', 'ls', 'cat', 'cp', 'mv', 'mkdir', 'rm',
               'git', 'curl', 'wget', 'source', 'echo', 'apt-get',
               'nvidia-smi', 'ffmpeg', 'ffprobe', 'head', 'tail', 'du',
               'tar', 'scp'}
PYTHON = re.compile(r'(\S*/)?python(3(\.\d+)?)?')


class Captured(BaseException):
    """Raised at a ``parse_args`` call to hand its parser out (a
    ``BaseException``, so that a script's ``except Exception`` lets it
    through)."""

    def __init__(self, parser):
        super().__init__()
        self.parser = parser


@lru_cache(maxsize=None)
def console_scripts(root: Path = ROOT) -> Dict[str, str]:
    """``{command: 'module:function'}`` of pyproject.toml's
    ``[project.scripts]``; ``pose-analysis`` is ``pose_analysis_service``'s
    ``main`` also before pyproject.toml exists."""
    scripts = {'pose-analysis': 'pose_analysis_service:main'}
    path = root / 'pyproject.toml'
    section = ''
    for line in path.read_text().splitlines() if path.is_file() else []:
        # (tomllib is Python 3.11's; the suite runs on 3.10 too.)
        if re.match(r'\s*\[', line):
            section = line.strip()
        match = re.match(r'\s*"?([\w.-]+)"?\s*=\s*"([\w.]+:[\w.]+)"', line)
        if section == '[project.scripts]' and match:
            scripts[match.group(1)] = match.group(2)
    return scripts


def entry_of(words: List[str]) -> Optional[Tuple[str, str, List[str]]]:
    """What a command runs: ``('project', file, args)`` for one of the
    project's scripts or modules, ``('make', 'Makefile', args)``,
    ``('foreign', tool, args)`` for another tool, or None for a command
    that is not one (``python -c``, a bare ``python``)."""
    first, rest = words[0].rsplit('/', 1)[-1], words[1:]   # .venv/bin/x
    scripts = console_scripts()
    if first in scripts:
        module = scripts[first].split(':')[0]
        return 'project', _module_file(module) or module, rest
    if first == 'make':
        return 'make', 'Makefile', rest
    if PYTHON.fullmatch(first):
        if not rest or rest[0] == '-c':
            return None
        if rest[0] == '-m' and len(rest) > 1:
            module, args = rest[1], rest[2:]
            if module.split('.')[0] in {'pose_suite'} or \
                    (ROOT / f'{module}.py').is_file():
                return 'project', _module_file(module) or module, args
            return 'foreign', module, args
        if rest[0].endswith('.py'):
            return 'project', rest[0], rest[1:]
        return None
    tool = f'{first} {rest[0]}' if rest and f'{first} {rest[0]}' in \
        FOREIGN_FLAGS else first
    return 'foreign', 'pip' if tool == 'pip3' else tool, rest


def _module_file(module: str) -> Optional[str]:
    """The project file of ``module`` (relative to the root), or None."""
    for path in (ROOT / (module.replace('.', '/') + '.py'),
                 ROOT / module.replace('.', '/') / '__main__.py'):
        if path.is_file():
            return str(path.relative_to(ROOT))
    return None


def is_command(words: List[str], inline: bool = False) -> bool:
    """Whether ``words`` is a command a user would paste: the project's
    scripts, ``make``, or (in a block; inline only with its flags) another
    tool of :data:`FOREIGN_FLAGS` or :data:`SHELL_WORDS`."""
    if not words:
        return False
    first = words[0].rsplit('/', 1)[-1]
    if PYTHON.fullmatch(first) or first == 'make' or \
            first in console_scripts():
        return len(words) > 1 or not inline
    known = first in SHELL_WORDS or first in {'pip', 'pip3', 'mkdocs',
                                              'pytest', 'jupyter', 'ray'}
    return known and (not inline or any(FLAG.fullmatch(w.split('=')[0])
                                        for w in words))


@lru_cache(maxsize=None)
def parser_of(file: str) -> Optional[argparse.ArgumentParser]:
    """The real parser of the project's script or module ``file``: its
    ``build_parser()``; else, when it builds an ``ArgumentParser``, the
    one its ``__main__`` code parses with, caught at ``parse_args``
    before it does anything; else None (it takes no arguments)."""
    path = ROOT / file
    source = path.read_text()
    module = file.removesuffix('.py').removesuffix('/__main__') \
        .replace('/', '.')
    importable = importlib.util.find_spec(module) is not None \
        if '.' not in module or module.startswith('pose_suite') else False
    if 'def build_parser(' in source and importable:
        return importlib.import_module(module).build_parser()
    if 'ArgumentParser(' not in source:
        return None

    def capture(self, *args, **kwargs):
        raise Captured(self)
    saved = (argparse.ArgumentParser.parse_args,
             argparse.ArgumentParser.parse_known_args, list(sys.argv),
             list(sys.path))
    argparse.ArgumentParser.parse_args = capture
    argparse.ArgumentParser.parse_known_args = capture
    sys.argv[:] = [str(path)]
    sys.path.insert(0, str(path.parent))
    try:
        with contextlib.redirect_stdout(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter('ignore')       # runpy: already imported
            if importable:
                runpy.run_module(module, run_name='__main__')
            else:
                runpy.run_path(str(path), run_name='__main__')
    except Captured as caught:
        return caught.parser
    finally:
        (argparse.ArgumentParser.parse_args,
         argparse.ArgumentParser.parse_known_args) = saved[:2]
        sys.argv[:], sys.path[:] = saved[2], saved[3]
    raise AssertionError(f'{file} builds an ArgumentParser but its main '
                         'never parsed with it')


def option_strings(parser: Optional[argparse.ArgumentParser]) -> set:
    """The parser's ``--long`` flags (``--help`` included)."""
    if parser is None:
        return set()
    return {flag for flag in parser._option_string_actions
            if flag.startswith('--')}


def parse_problem(parser, args: List[str]) -> Optional[str]:
    """What argparse says about ``args`` (its error line), or None. A
    flag's first letters (``--frame`` for ``--frames``) are an error."""
    stderr, abbreviations = io.StringIO(), parser.allow_abbrev
    parser.allow_abbrev = False
    try:
        with contextlib.redirect_stderr(stderr), \
                contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(args)
    except SystemExit as exc:
        if exc.code:
            return stderr.getvalue().strip().splitlines()[-1] \
                if stderr.getvalue().strip() else f'exit {exc.code}'
    finally:
        parser.allow_abbrev = abbreviations
    return None


@lru_cache(maxsize=None)
def makefile(root: Path = ROOT) -> Tuple[frozenset, frozenset]:
    """The Makefile's targets and the variables a user may set on the
    command line (``VAR ?= default``)."""
    targets, variables = set(), set()
    for line in (root / 'Makefile').read_text().splitlines():
        if line.startswith(('\t', '#')) or not line.strip():
            continue
        match = re.match(r'([A-Za-z_][A-Za-z0-9_]*)\s*\?=', line)
        if match:
            variables.add(match.group(1))
            continue
        match = re.match(r'([^:=#]+?)\s*::?(?!=)', line)
        if match and not line.startswith('.'):
            targets.update(name for name in match.group(1).split()
                           if '$' not in name and '%' not in name)
    return frozenset(targets), frozenset(variables)


def check_make(command: Command, args: List[str]) -> List[str]:
    targets, variables = makefile()
    problems = []
    for word in args:
        if word.startswith('--'):
            if word.split('=')[0] not in FOREIGN_FLAGS.get('make', ()):
                problems.append(f'make has no flag {word} here')
        elif word.startswith('-'):
            continue
        elif '=' in word:
            if word.split('=')[0] not in variables:
                problems.append(f'the Makefile sets no variable '
                                f'{word.split("=")[0]} (?=)')
        elif word not in targets:
            problems.append(f'the Makefile has no target {word!r}')
    return [f'{command.where}: `make {" ".join(args)}`: {p}'
            for p in problems]


def check_commands(commands: List[Command], run_config=None
                   ) -> Tuple[List[str], Dict[str, int]]:
    """Every command parsed by its real parser (a synopsis: its flags
    looked up), ``make`` against the Makefile, another tool's flags
    against :data:`FOREIGN_FLAGS`; ``run_config(command, args)`` runs a
    ``creating_config.py`` command (not one marked ``# needs: ...``) and
    returns its problem or None. Returns the problems and counts."""
    problems, counts = [], {'parsed': 0, 'run': 0, 'synopsis': 0,
                            'gpu': 0, 'cluster': 0, 'make': 0, 'foreign': 0}
    for command in commands:
        entry = entry_of(command.words)
        if command.needs is not None:
            if command.needs not in NEEDS:
                problems.append(f'{command.where}: "needs: {command.needs}"'
                                f' is not one of {sorted(NEEDS)}')
            else:
                counts[command.needs] += 1
        if entry is None:
            continue
        kind, target, args = entry
        text = ' '.join(command.words)
        if kind == 'make':
            counts['make'] += 1
            problems += check_make(command, args)
            continue
        if kind == 'foreign':
            counts['foreign'] += 1
            allowed = FOREIGN_FLAGS.get(target, set())
            for word in args:
                flag = word.split('=')[0]
                if FLAG.fullmatch(flag) and flag not in allowed:
                    problems.append(f'{command.where}: `{text}`: {flag} is '
                                    f'not a flag of {target} listed in '
                                    'FOREIGN_FLAGS')
            continue
        if not (ROOT / target).is_file():
            problems.append(f'{command.where}: `{text}`: no such script or '
                            f'module in the project: {target}')
            continue
        parser = parser_of(target)
        if parser is None:
            if args:
                problems.append(f'{command.where}: `{text}`: {target} '
                                'takes no arguments')
            continue
        if command.synopsis:
            counts['synopsis'] += 1
            known = option_strings(parser)
            for word in args:
                for flag in FLAG.findall(word):
                    if flag not in known:
                        problems.append(f'{command.where}: `{text}`: '
                                        f'{target} has no flag {flag}')
            continue
        problem = parse_problem(parser, args) or \
            command_value_problem(target, parser.parse_args(args))
        counts['parsed'] += 1
        if problem:
            problems.append(f'{command.where}: `{text}`: {problem}')
        elif target == 'creating_config.py' and command.needs is None \
                and run_config is not None:
            counts['run'] += 1
            problem = run_config(parser.parse_args(args), args)
            if problem:
                problems.append(f'{command.where}: `{text}`: {problem}')
    return problems, counts


def known_flags(commands: List[Command]) -> Dict[str, set]:
    """``{owner: flags}``: the flags of the scripts in
    :data:`DOCUMENTED_IN_FULL` and of every project entry point the
    commands run."""
    files = set(DOCUMENTED_IN_FULL)
    for command in commands:
        entry = entry_of(command.words)
        if entry and entry[0] == 'project' and (ROOT / entry[1]).is_file():
            files.add(entry[1])
    return {file: option_strings(parser_of(file)) for file in sorted(files)}


def all_entry_points() -> List[str]:
    """Every project file with a command line: the scripts at the root and
    in benchmarks/ and examples/, and pose_suite's modules that run as
    ``python -m``."""
    files = [*ROOT.glob('*.py'), *ROOT.glob('benchmarks/*.py'),
             *ROOT.glob('examples/*.py'), *ROOT.glob('pose_suite/**/*.py')]
    return sorted(str(f.relative_to(ROOT)) for f in files
                  if "__name__ == '__main__'" in f.read_text())


def check_flags(pages: Dict[str, str], commands: List[Command]) -> List[str]:
    """Every ``--flag`` the pages name is a flag of one of the project's
    command lines or of another tool (:data:`FOREIGN_FLAGS`), and every
    flag of the scripts in :data:`DOCUMENTED_IN_FULL` is named."""
    named = flags_named(pages)
    owners = known_flags(commands)
    known = set().union(*owners.values(), *FOREIGN_FLAGS.values())
    if set(named) - known:                    # look further, only if needed
        known |= set().union(*(option_strings(parser_of(f))
                               for f in all_entry_points()))
    problems = [f'{where[0]}: {flag} is not a flag of any command here '
                f'(also at {", ".join(where[1:4]) or "no other line"})'
                for flag, where in sorted(named.items()) if flag not in known]
    for file in DOCUMENTED_IN_FULL:
        for flag in sorted(owners[file] - set(named) - {'--help'}):
            problems.append(f'{file}\'s flag {flag} is named nowhere in '
                            'the documentation')
    return problems


def needs_of(words: List[str]) -> Optional[str]:
    """What a command cannot run without, by its words: a GPU for
    ``make gpu-check`` (but ``DEVICE=cpu``) and ``--device cuda...``, a
    cluster for ``ray start``; None for the rest (a run with ``--executor
    ray`` starts a private Ray here: only its comment says when it joins a
    cluster)."""
    first = words[0].rsplit('/', 1)[-1] if words else ''
    if first == 'make' and 'gpu-check' in words and 'DEVICE=cpu' not in words:
        return 'gpu'
    if any(re.fullmatch(r'--device(=cuda\S*)?', word) and
           (word != '--device' or words[number + 1:number + 2] and
            words[number + 1].startswith('cuda'))
           for number, word in enumerate(words)):
        return 'gpu'
    if words[:2] == ['ray', 'start']:
        return 'cluster'
    return None


def check_needs(pages: Dict[str, str]) -> List[str]:
    """Every command of a shell block that cannot run here
    (:func:`needs_of`) carries its ``# needs: ...`` mark (inline code in
    prose names a command, it is not one to paste)."""
    problems = []
    for page, text in pages.items():
        for block in blocks_of(page, text)[0]:
            if block.language not in SHELL_LANGUAGES:
                continue
            for number, line in command_lines(block):
                for command in parse_command(f'{page}:{number}', line):
                    need = needs_of(command.words)
                    if need and command.needs != need:
                        problems.append(
                            f'{command.where}: `{" ".join(command.words)}` '
                            f'needs a {need}: mark it `# needs: {need}`')
    return problems


def run_creating_config(tmp: Path):
    """A ``run_config`` for :func:`check_commands`: the command run in a
    fresh folder holding a copy of the project's config.json, then the
    config it names loaded and validated with the suite's own loader."""
    from conftest import run_cli
    from pose_suite.config import load_config
    from pose_suite.errors import ConfigError

    def run(parsed, args):
        folder = Path(tmp) / f'run{len(list(Path(tmp).iterdir()))}'
        folder.mkdir()
        shutil.copy(ROOT / 'config.json', folder / 'config.json')
        result = run_cli('creating_config.py', *args, cwd=folder)
        if result.returncode != 0:
            return f'exit {result.returncode}: {result.stderr.strip()}'
        config = folder / parsed.config
        if not config.exists() and parsed.show:
            return None                   # --show alone writes nothing
        try:
            load_config(config)
        except ConfigError as exc:
            return f'the config it wrote does not load: {exc}'
        return None
    return run


def documented(root: Path = ROOT) -> Tuple[Dict[str, str], List[Command]]:
    """The real pages and their commands."""
    from doc_markdown import pages_of
    pages = pages_of(root)
    return pages, shell_commands(pages, is_command)
