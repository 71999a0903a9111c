"""Documentation that runs: every command a user would paste from README.md
and docs/**/*.md parsed by the real command-line parser (creating_config.py
commands also run, on a copy of config.json), every ``--flag`` the pages
name a real one, every flag of creating_config.py and
pose_analysis_service.py named, and the table of keys in
docs/configuration.md equal to the config table (keys and defaults).

test_documentation_checker.py shows, on synthetic lines, that the checker
catches each kind of fault.
"""
import pytest
from doc_commands import (ROOT, check_commands, check_flags, check_needs,
                          documented, run_creating_config)
from doc_keys import check_inline_values, check_keys
from doc_markdown import broken_json_blocks
from doc_values import check_python_configs, check_snippet_values

from pose_suite.config import DEFAULTS
from pose_suite.config.keys import validate_value


# -- the real pages ---------------------------------------------------------

@pytest.fixture(scope='module')
def real():
    return documented()


def test_the_checks_read_the_readme_and_every_docs_page(real):
    """The pages checked are README.md and every docs/**/*.md, and
    commands are taken from each of them (a page left out rots
    unseen)."""
    pages, commands = real
    assert set(pages) == {'README.md', *(
        str(path.relative_to(ROOT)) for path in (ROOT / 'docs').rglob('*.md'))}
    assert len(pages) > 10
    assert any(command.where.startswith('README.md:')
               for command in commands)


def test_every_documented_command_needing_a_gpu_or_cluster_is_marked(real):
    pages, _ = real
    problems = check_needs(pages)
    assert not problems, '\n'.join(problems)


def test_every_documented_command_parses_and_config_commands_run(
        real, tmp_path):
    pages, commands = real
    problems, counts = check_commands(commands, run_creating_config(tmp_path))
    print(f'{len(commands)} commands in {len(pages)} pages: {counts}')
    assert not problems, '\n'.join(problems)
    assert counts['parsed'] >= 10 and counts['run'] >= 3


def test_every_documented_flag_exists_and_every_flag_is_documented(real):
    pages, commands = real
    problems = check_flags(pages, commands)
    assert not problems, '\n'.join(problems)


def test_the_documented_keys_are_the_config_table(real):
    pages, _ = real
    problems = check_keys(pages, DEFAULTS) + \
        check_inline_values(pages, DEFAULTS, validate_value) + \
        check_snippet_values(pages, DEFAULTS, validate_value) + \
        check_python_configs(pages, DEFAULTS, validate_value) + \
        broken_json_blocks(pages)
    assert not problems, '\n'.join(problems)
