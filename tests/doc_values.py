"""The values the documentation gives config keys, checked by the suite's
own validation (the keys themselves: :mod:`doc_keys`): a documented
``pose-analysis`` command's flags turned into config values as the command
turns them and validated as it validates them, every config snippet's
values (JSON blocks, inline JSON), and every config dict or keyword a
``python`` block hands ``PoseAnalysisService``. Nothing here reads an
input or loads a model: a placeholder (``my_video.mp4``) is a value as
good as any path.

Each ``check_*`` returns a list of problems, one line each.
"""
import ast
import json
from typing import Dict, List, Optional

from doc_keys import is_config
from doc_markdown import blocks_of, json_snippets

#: The classes whose first argument (a dict) and keywords are config
#: values (pose_suite.service.analyser.PoseAnalyser's ``**overrides``).
SERVICE_CLASSES = {'PoseAnalysisService', 'PoseAnalyser'}


def command_value_problem(file: str, parsed) -> Optional[str]:
    """What ``pose_analysis_service.py`` (``pose-analysis``) would say
    about the values of its parsed flags ``parsed`` (the error line it
    exits 1 with), or None: the flags turned into config values by
    :func:`pose_suite.cli.flag_overrides` and validated on the default
    config by :func:`pose_suite.config.apply_overrides`, as ``load_config``
    does. Other files: None (argparse said all there is)."""
    if file != 'pose_analysis_service.py':
        return None
    from pose_suite.cli import flag_overrides
    from pose_suite.config import apply_overrides, build_config
    from pose_suite.errors import ConfigError
    try:
        apply_overrides(build_config({}), flag_overrides(parsed))
    except ConfigError as exc:
        return f'error: {exc}'
    return None


def config_problems(where: str, values: dict, defaults, validate,
                    what: str = 'a config snippet') -> List[str]:
    """Every key of ``values`` a config key, and its value one the key
    takes (``validate(key, value)``, the suite's ``validate_value``, does
    not raise)."""
    problems = []
    for key, value in values.items():
        if key not in defaults:
            problems.append(f'{where}: "{key}" ({what}) is not a config key')
            continue
        try:
            validate(key, value)
        except Exception as exc:               # the suite's ConfigError
            problems.append(f'{where}: "{key}": {json.dumps(value)} '
                            f'({what}): {exc}')
    return problems


def check_snippet_values(pages: Dict[str, str], defaults, validate
                         ) -> List[str]:
    """Every config snippet's values (:func:`doc_keys.is_config` says
    which JSON objects are; their unknown keys :func:`doc_keys.check_keys`
    reports)."""
    problems = []
    for where, value, before in json_snippets(pages):
        if is_config(value, defaults, before):
            problems += [p for p in config_problems(where, value, defaults,
                                                    validate)
                         if 'is not a config key' not in p]
    return problems


def _literal(node):
    """The value of a literal node, or ``...`` (a name, a call: not
    known here)."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ...


def python_configs(source: str, defaults) -> List[tuple]:
    """The config values of a Python snippet: ``(line offset, {key:
    value}, what)`` for every dict literal whose keys are strings, one a
    config key (or close to one: :func:`doc_keys.is_config`), and for the
    dict and keywords of every ``PoseAnalysisService(...)`` call. A value
    that is not a literal is ``...``. Raises SyntaxError."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = getattr(node.func, 'id', getattr(node.func, 'attr', ''))
            if name in SERVICE_CLASSES:
                keywords = {k.arg: _literal(k.value) for k in node.keywords
                            if k.arg is not None}
                if keywords:
                    found.append((node.lineno, keywords,
                                  f'a keyword of {name}'))
        if isinstance(node, ast.Dict) and node.keys and all(
                isinstance(k, ast.Constant) and isinstance(k.value, str)
                for k in node.keys):
            values = {k.value: _literal(v)
                      for k, v in zip(node.keys, node.values)}
            if is_config(values, defaults):
                found.append((node.lineno, values, 'a config dict'))
    return sorted(found, key=lambda item: item[0])


def check_python_configs(pages: Dict[str, str], defaults, validate
                         ) -> List[str]:
    """Every config dict and service keyword of the pages' ``python``
    blocks (:func:`python_configs`) holds real keys with values they take
    (a value that is no literal: only its key checked); a block that is
    not Python (``>>>`` prompts dropped first) is one problem."""
    problems = []
    for page, text in pages.items():
        for block in blocks_of(page, text)[0]:
            if block.language not in {'python', 'py', 'pycon'} or \
                    not block.lines:
                continue
            first = block.lines[0][0]
            lines = [line for _, line in block.lines]
            if any(line.startswith('>>> ') for line in lines):   # a session
                lines = [line[4:] if line.startswith(('>>> ', '... '))
                         else '' for line in lines]
            source = '\n'.join(lines)
            try:
                found = python_configs(source, defaults)
            except SyntaxError as exc:
                problems.append(f'{page}:{first - 1}: a python block that '
                                f'is not Python: {exc}')
                continue
            for offset, values, what in found:
                checked = {k: v for k, v in values.items()
                           if v is not ... or k not in defaults}
                problems += config_problems(f'{page}:{first + offset - 1}',
                                            checked, defaults, validate,
                                            what)
    return problems
