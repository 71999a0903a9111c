"""The documentation's config keys checked against the config table
(:data:`pose_suite.config.DEFAULTS`, passed in): the table of keys in
:data:`CONFIG_PAGE`, every other table headed ``key``, and every JSON
snippet a user would put into config.json. Each ``check_*`` returns a list
of problems, one line each; empty when the pages are right.
"""
import difflib
import json
import re
from typing import Dict, List

from doc_markdown import (blocks_of, code_spans, json_snippets, key_tables,
                          table_default)

#: The page whose ``| key | default | meaning |`` table must hold every key.
CONFIG_PAGE = 'docs/configuration.md'


def check_keys(pages: Dict[str, str], defaults: Dict[str, object]
               ) -> List[str]:
    """The key tables against the config table ``defaults``: every key a
    row of :data:`CONFIG_PAGE`'s table, every row's key real, one key a
    row, its default the real one; and every config snippet's keys real."""
    if CONFIG_PAGE not in pages:
        return [f'{CONFIG_PAGE} is missing: it holds the table of keys']
    problems, listed = [], set()
    for page, text in pages.items():
        for where, names, cell in key_tables(page, text):
            if page == CONFIG_PAGE:
                problems += [f'{where}: `{name}` has a row already'
                             for name in names if name in listed]
                listed.update(names)
            for name in names:
                if name not in defaults:
                    problems.append(f'{where}: `{name}` is not a config key')
            real = [name for name in names if name in defaults]
            if len(names) != 1:
                problems.append(f'{where}: a row names {len(names)} keys '
                                f'({", ".join(names)}): one key a row, so '
                                'that its default can be checked')
            elif real and cell is not None and \
                    not same(table_default(cell), defaults[real[0]]):
                problems.append(
                    f'{where}: `{real[0]}`\'s default is '
                    f'{json.dumps(defaults[real[0]])}, the table says '
                    f'{cell!r}')
    for key in defaults:
        if key not in listed:
            problems.append(f'{CONFIG_PAGE}: config key `{key}` has no row '
                            'in its table of keys')
    for where, value, before in json_snippets(pages):
        if is_config(value, defaults, before):
            problems += [f'{where}: "{key}" (a config snippet) is not a '
                         'config key' for key in value if key not in defaults]
    return problems


def same(documented, real) -> bool:
    """Equal as JSON values: ``0`` is not ``false`` (Python says it is),
    ``0`` is ``0.0``."""
    if isinstance(documented, bool) or isinstance(real, bool):
        return documented is real
    if isinstance(documented, (list, dict)):
        return json.dumps(documented, sort_keys=True) == \
            json.dumps(real, sort_keys=True)
    return documented == real


#: Top-level keys of the suite's result files (docs/output.md): an object
#: holding one is a result (or an excerpt of one), not a config.
RESULT_KEYS = {'meta', 'frames', 'persons', 'people', 'frame_index',
               'timestamp_s', 'track_id', 'keypoints', 'keypoint_scores',
               'bbox', 'bbox_score'}


def is_config(value, defaults, before: str = '') -> bool:
    """Whether the object ``value`` is a config snippet, by its keys: no
    result key (:data:`RESULT_KEYS`) and at least one config key or one
    key close to one (``trackng``); or, flat, after prose naming
    config.json."""
    if not isinstance(value, dict) or not value or \
            any(key in RESULT_KEYS for key in value):
        return False
    near = any(key in defaults or
               difflib.get_close_matches(key, defaults, n=1, cutoff=0.8)
               for key in value)
    flat = all(not isinstance(v, dict) or k in defaults
               for k, v in value.items())
    return near or ('config.json' in before and flat)


def check_inline_values(pages: Dict[str, str], defaults: Dict[str, object],
                        validate) -> List[str]:
    """Every inline ``"key": value`` of a config key (`"max_persons": 1`)
    holds a value the key takes: ``validate(key, value)`` (the suite's
    :func:`pose_suite.config.keys.validate_value`) does not raise. A
    value with a placeholder (`"workers": N`) is not JSON and is passed
    by."""
    problems = []
    for page, text in pages.items():
        _, prose = blocks_of(page, text)
        for number, span in code_spans(prose):
            match = re.fullmatch(r'"(\w+)":\s*(.+)', span)
            if not match or match.group(1) not in defaults:
                continue
            try:
                value = json.loads(match.group(2))
            except ValueError:
                continue
            try:
                validate(match.group(1), value)
            except Exception as exc:            # the suite's ConfigError
                problems.append(f'{page}:{number}: `{span}`: {exc}')
    return problems
