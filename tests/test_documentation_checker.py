"""The documentation checker itself (tests/doc_*.py), on a few synthetic
lines, each broken one way, to show that it catches that: a command with
an unknown flag or a value the suite refuses, a missing script, a Makefile
target, a command needing a GPU or cluster without its mark, a key table
missing a key or with a wrong default, a config snippet (JSON, inline,
Python) with an unknown key or value. test_documentation_runs.py runs it on
the real pages.
"""
import json

from doc_commands import (FOREIGN_FLAGS, ROOT, check_commands, check_flags,
                          check_needs, is_command, run_creating_config)
from doc_keys import check_inline_values, check_keys
from doc_markdown import broken_json_blocks, shell_commands
from doc_values import check_python_configs, check_snippet_values

from creating_config import MODEL_KEYS
from pose_suite.config import DEFAULTS
from pose_suite.config.keys import validate_value


def commands_of(text: str, page: str = 'docs/x.md'):
    return shell_commands({page: text}, is_command)


def problems_of(text: str, tmp_path=None):
    run = run_creating_config(tmp_path) if tmp_path else None
    return check_commands(commands_of(text), run)


def config_page(rows=None, extra: str = '') -> dict:
    """A docs/configuration.md holding one correct row per key, ``rows``
    replacing or removing some (``{key: row or None}``)."""
    lines = ['| key | default | meaning |', '|---|---|---|']
    for key, default in DEFAULTS.items():
        row = f'| `{key}` | `{json.dumps(default)}` | what it does |'
        row = (rows or {}).get(key, row)
        if row is not None:
            lines.append(row)
    return {'docs/configuration.md': '\n'.join(lines) + '\n' + extra}


def row_of(key: str) -> int:
    """The line of ``key``'s row in :func:`config_page`."""
    return list(DEFAULTS).index(key) + 3


# -- the checker, on synthetic pages ---------------------------------------

def test_a_command_with_real_flags_parses():
    text = ('```bash\n'
            'python pose_analysis_service.py --input clip.mp4 \\\n'
            '    --time-range 12.5-30 --format coco   # a comment\n'
            '$ .venv/bin/python -m pose_suite.evaluate a.json r1.json ...\n'
            'pose-analysis --input clips/ --executor ray   # needs: cluster\n'
            '.venv/bin/pose-analysis --report results/\n'
            '```\n')
    commands = commands_of(text)
    assert [c.words[:2] for c in commands] == [
        ['python', 'pose_analysis_service.py'],
        ['.venv/bin/python', '-m'], ['pose-analysis', '--input'],
        ['.venv/bin/pose-analysis', '--report']]
    assert commands[0].words[-2:] == ['--format', 'coco']
    problems, counts = check_commands(commands)
    assert problems == []
    assert (counts['parsed'], counts['cluster'], counts['gpu']) == (4, 1, 0)


def test_an_unknown_flag_in_a_command_fails():
    problems, _ = problems_of(
        '```bash\npython pose_analysis_service.py --input a.mp4 '
        '--nonexistent-flag\n```\n')
    assert len(problems) == 1
    assert problems[0].startswith('docs/x.md:2: `python pose_analysis_')
    assert 'unrecognized arguments: --nonexistent-flag' in problems[0]


def test_a_bad_value_in_a_command_fails():
    problems, _ = problems_of(
        'Run `pose-analysis --format cocoa` to export.\n')
    assert len(problems) == 1 and "invalid choice: 'cocoa'" in problems[0]


def test_a_synopsis_only_needs_real_flags():
    ok = '```\npose-analysis [--input PATH] [--executor local|ray]\n```\n'
    assert problems_of(ok)[0] == []
    bad = '```\npose-analysis [--input PATH] [--inptu PATH]\n```\n'
    problems = problems_of(bad)[0]
    assert problems == ['docs/x.md:2: `pose-analysis [--input PATH] '
                        '[--inptu PATH]`: pose_analysis_service.py has no '
                        'flag --inptu']


def test_a_script_without_build_parser_gives_the_parser_its_main_uses():
    text = ('```bash\npython benchmarks/bench_exports.py --frames 100\n'
            'python benchmarks/bench_exports.py --frame 100\n'
            'python benchmarks/bench_angles.py --persons 2\n'
            'python benchmarks/bench_angles.py\n```\n')
    problems, counts = problems_of(text)
    # (--frame would do for argparse, which takes a flag's first letters.)
    assert problems == [
        'docs/x.md:3: `python benchmarks/bench_exports.py --frame 100`: '
        'bench_exports.py: error: unrecognized arguments: --frame 100',
        'docs/x.md:4: `python benchmarks/bench_angles.py --persons 2`: '
        'benchmarks/bench_angles.py takes no arguments']
    assert counts['parsed'] == 2


def test_a_missing_script_or_module_fails():
    problems, _ = problems_of('```sh\npython -m pose_suite.evaluat a b\n'
                              'python pose_analysis.py --input a\n```\n')
    assert len(problems) == 2
    assert all('no such script or module' in p for p in problems)


def test_make_targets_and_variables_are_the_makefiles():
    assert problems_of('`make install WHEELHOUSE=DIR`, `make test-fast`\n'
                       )[0] == []
    problems, _ = problems_of('```bash\nmake instal\nmake install '
                              'WHEELHOUS=DIR\n```\n')
    assert problems == [
        "docs/x.md:2: `make instal`: the Makefile has no target 'instal'",
        'docs/x.md:3: `make install WHEELHOUS=DIR`: the Makefile sets no '
        'variable WHEELHOUS (?=)']


def test_another_tools_flags_are_checked_against_that_tool():
    assert problems_of('```bash\nray start --head --port=6379\n'
                       'pip install --no-deps mmpose\n```\n')[0] == []
    problems, _ = problems_of('```bash\npip install --head mmpose\n```\n')
    assert problems == ['docs/x.md:2: `pip install --head mmpose`: --head '
                        'is not a flag of pip listed in FOREIGN_FLAGS']
    assert '--head' in FOREIGN_FLAGS['ray start']


def test_needs_says_gpu_or_cluster():
    problems, counts = problems_of(
        '```bash\npose-analysis --device cuda   # needs: gpu\n'
        'pose-analysis --device cuda   # needs: gpus\n```\n')
    assert counts['gpu'] == 1
    assert problems == ['docs/x.md:3: "needs: gpus" is not one of '
                        "['cluster', 'gpu']"]


def test_a_command_that_needs_a_gpu_or_a_cluster_is_marked():
    """A pasted command that cannot run here says so (``# needs: gpu`` or
    ``cluster``); one that can (``DEVICE=cpu``, ``--device cpu``) needs no
    mark, nor does a command named in prose."""
    ok = ('Run `make gpu-check` on a GPU machine.\n\n```bash\n'
          'make gpu-check   # needs: gpu\nmake gpu-check DEVICE=cpu\n'
          'pose-analysis --device cpu\n'
          'ray start --head   # needs: cluster\n```\n')
    assert check_needs({'docs/x.md': ok}) == []
    bad = ('```bash\nmake gpu-check\npose-analysis --device cuda:1\n'
           'pose-analysis --device=cuda   # needs: cluster\n'
           'ray start --address=10.0.0.1:6379\n```\n')
    assert check_needs({'docs/x.md': bad}) == [
        'docs/x.md:2: `make gpu-check` needs a gpu: mark it `# needs: gpu`',
        'docs/x.md:3: `pose-analysis --device cuda:1` needs a gpu: mark it '
        '`# needs: gpu`',
        'docs/x.md:4: `pose-analysis --device=cuda` needs a gpu: mark it '
        '`# needs: gpu`',
        'docs/x.md:5: `ray start --address=10.0.0.1:6379` needs a cluster: '
        'mark it `# needs: cluster`']


def test_a_console_block_is_checked_without_its_output():
    """A ``console`` block's ``$`` lines are commands, checked like any
    (its other lines are output)."""
    problems, counts = problems_of(
        '```console\n$ pose-analysis --inptu a.mp4\n'
        'usage: pose_analysis_service.py [-h] --input x\n```\n')
    assert counts['parsed'] == 1 and len(problems) == 1
    assert problems[0].startswith('docs/x.md:2: `pose-analysis --inptu')


def test_creating_config_commands_run_and_their_config_loads(tmp_path):
    problems, counts = problems_of(
        '```bash\npython creating_config.py --bbox-thr 0.5 --device cpu\n'
        'python creating_config.py --config b.json --angles\n'
        'python creating_config.py --show\n```\n', tmp_path)
    assert (problems, counts['run']) == ([], 3)
    written = json.loads((tmp_path / 'run1' / 'b.json').read_text())
    # Written outside the project: the model files by their full paths.
    assert written == {**DEFAULTS, 'angles': True, **{
        key: str(ROOT / DEFAULTS[key]) for key in MODEL_KEYS}}
    problems, _ = problems_of(
        '```bash\npython creating_config.py --bbox-thr 1.5\n```\n', tmp_path)
    assert len(problems) == 1 and 'exit 1: error:' in problems[0] \
        and 'bbox_thr' in problems[0]


def test_flags_in_prose_must_exist_and_every_flag_be_named():
    from doc_commands import option_strings, parser_of
    every = sorted(option_strings(parser_of('creating_config.py')) |
                   option_strings(parser_of('pose_analysis_service.py')))
    page = 'Flags: ' + ', '.join(f'`{flag}`' for flag in every) + '.\n'
    assert check_flags({'docs/a.md': page}, []) == []
    renamed = page.replace('`--bbox-thr`', '`--bbox-threshold`')
    assert check_flags({'docs/a.md': renamed}, []) == [
        'docs/a.md:1: --bbox-threshold is not a flag of any command here '
        '(also at no other line)',
        "creating_config.py's flag --bbox-thr is named nowhere in the "
        'documentation']
    # Another tool's flag is fine in prose; the project's other scripts'
    # flags (here pose_suite.models.weights') are known too.
    assert check_flags({'docs/a.md': page + 'pip `--no-deps`, `--base-url`'},
                       []) == []


def test_the_key_table_holds_every_key_with_its_default():
    assert check_keys(config_page(), DEFAULTS) == []
    assert check_keys({}, DEFAULTS) == [
        'docs/configuration.md is missing: it holds the table of keys']
    assert check_keys(config_page({'kpt_thr': None}), DEFAULTS) == [
        'docs/configuration.md: config key `kpt_thr` has no row in its '
        'table of keys']
    unknown = config_page(extra='| key | default | meaning |\n|---|---|---|'
                                '\n| `kpt_threshold` | `0.3` | x |\n')
    assert check_keys(unknown, DEFAULTS) == [
        f'docs/configuration.md:{len(DEFAULTS) + 5}: `kpt_threshold` is not '
        'a config key']
    wrong = config_page({'bbox_thr': '| `bbox_thr` | `0.5` | x |'})
    assert check_keys(wrong, DEFAULTS) == [
        f"docs/configuration.md:{row_of('bbox_thr')}: `bbox_thr`'s default "
        "is 0.3, the table says '`0.5`'"]
    false = config_page({'angles': '| `angles` | `0` | x |'})
    assert check_keys(false, DEFAULTS) == [
        f"docs/configuration.md:{row_of('angles')}: `angles`'s default is "
        "false, the table says '`0`'"]
    twice = config_page(extra='| key | default | meaning |\n|---|---|---|'
                              '\n| `kpt_thr` | `0.3` | x |\n')
    assert check_keys(twice, DEFAULTS) == [
        f'docs/configuration.md:{len(DEFAULTS) + 5}: `kpt_thr` has a row '
        'already']
    grouped = config_page({'hampel': '| `hampel`, `filter` | off | x |',
                           'filter': None})
    assert check_keys(grouped, DEFAULTS) == [
        f'docs/configuration.md:{row_of("hampel")}: a row names 2 keys '
        '(hampel, filter): one key a row, so that its default can be '
        'checked']


def test_a_missing_row_is_found_whichever_key_it_is():
    """Each key's row left out in turn (the first, the last, any): the
    check names that key, and only it."""
    for key in DEFAULTS:
        assert check_keys(config_page({key: None}), DEFAULTS) == [
            f'docs/configuration.md: config key `{key}` has no row in its '
            'table of keys'], key


def test_a_key_table_on_another_page_is_checked_too():
    """A table headed ``key`` on another page (docs/movement.md's: key,
    flag, default) is held to the config table as the configuration
    page's is: its keys real, its defaults the real ones."""
    other = {'docs/movement.md': '| key | flag | default | meaning |\n'
             '|---|---|---|---|\n| `hampel` | `--hampel` | `true` | x |\n'
             '| `hample` | `--hample` | `false` | x |\n'}
    assert check_keys({**config_page(), **other}, DEFAULTS) == [
        "docs/movement.md:3: `hampel`'s default is false, the table says "
        "'`true`'",
        'docs/movement.md:4: `hample` is not a config key']


def test_a_config_snippet_holds_only_real_keys():
    snippet = ('In config.json:\n\n```json\n{"executor": "ray", '
               '"workers": 2}\n```\n')
    assert check_keys({**config_page(), 'docs/ray.md': snippet},
                      DEFAULTS) == []
    typo = snippet.replace('"workers"', '"worker"')
    assert check_keys({**config_page(), 'docs/ray.md': typo}, DEFAULTS) == [
        'docs/ray.md:4: "worker" (a config snippet) is not a config key']
    result = ('```json\n{"meta": {"input": "a"}, "frames": []}\n```\n')
    assert check_keys({**config_page(), 'docs/out.md': result},
                      DEFAULTS) == []


def test_a_config_snippet_in_a_text_block_or_inline_is_checked_too():
    """A config.json snippet in a ``text`` block, inline
    (`{"executor": "ray"}`) or in a ``jsonc`` block (its ``//`` comments
    and last comma dropped) holds only real keys too; an inline object
    that is no config (a key's value, a result's fields) is let be."""
    text = ('In config.json:\n\n```text\n{"executor": "ray", "worker": 2}'
            '\n```\n')
    inline = 'Set `{"executor": "ray", "worker": 2}` in config.json.\n'
    values = ('`filter`: `{"type": "none"}`; a result: `{"meta": {}, '
              '"frames": []}`; `"hampel": {"window_frames": 7}`.\n')
    jsonc = ('```jsonc\n{\n  "executor": "ray",  // on a cluster\n'
             '  "ray_adress": "auto",\n}\n```\n')
    assert check_keys({**config_page(), 'docs/ray.md': text + inline
                       + values + jsonc}, DEFAULTS) == [
        'docs/ray.md:6: "worker" (a config snippet) is not a config key',
        'docs/ray.md:4: "worker" (a config snippet) is not a config key',
        'docs/ray.md:9: "ray_adress" (a config snippet) is not a config key']


def test_an_inline_key_value_is_one_the_key_takes():
    page = {'docs/a.md': 'Set `"max_persons": 1` and `"workers": N`; a '
                         'result has `"people": []`.\n'}
    assert check_inline_values(page, DEFAULTS, validate_value) == []
    page = {'docs/a.md': 'Set `"max_persons": -1` or `"bbox_thr": 3`.\n'}
    problems = check_inline_values(page, DEFAULTS, validate_value)
    assert [p.split(': ')[0:2] for p in problems] == [
        ['docs/a.md:1', '`"max_persons"'], ['docs/a.md:1', '`"bbox_thr"']]
    assert 'bbox_thr' in problems[1] and '[0, 1]' in problems[1]


def test_a_value_the_command_refuses_fails():
    """A ``pose-analysis`` command's flag values go through the command's
    own conversion and validation: one it would exit 1 on fails here,
    though argparse takes it; a file that does not exist is no fault."""
    ok = ('```bash\npose-analysis --input my_video.mp4 --time-range 12.5-30 '
          '--person-order score --frame-step 2 --device cpu\n'
          'pose-analysis --postprocess output/ --filter butterworth\n```\n')
    assert problems_of(ok)[0] == []
    problems, counts = problems_of(
        '```bash\npose-analysis --input a.mp4 --time-range 12.5..30\n'
        'python pose_analysis_service.py --person-order biggest\n'
        'pose-analysis --frame-step x\npose-analysis --device gpu\n'
        'pose-analysis --postprocess out/ --filter wobbly\n```\n')
    assert counts['parsed'] == 5
    assert [p.split(': error: ')[0] for p in problems] == [
        'docs/x.md:2: `pose-analysis --input a.mp4 --time-range 12.5..30`',
        'docs/x.md:3: `python pose_analysis_service.py --person-order '
        'biggest`', 'docs/x.md:4: `pose-analysis --frame-step x`',
        'docs/x.md:5: `pose-analysis --device gpu`',
        'docs/x.md:6: `pose-analysis --postprocess out/ --filter wobbly`']
    assert "got 'biggest'" in problems[1] and "got 'gpu'" in problems[3]


def test_a_config_snippet_holds_values_its_keys_take():
    """A config snippet is one by its keys (one config key, or one close
    to one, and no result key), wherever it stands; its values are
    validated as config.json's are."""
    page = ('```json\n{"input": "my_video.mp4", "frame_step": 3, '
            '"tracking": false}\n```\n\n```json\n{"input": "a.mp4", '
            '"frame_step": "three", "tracking": "yes"}\n```\n\n'
            '```json\n{"trackng": false}\n```\n\n'
            '```json\n{"meta": {"device": "gpu"}, "frames": []}\n```\n\n'
            '```json\n{"input": "a.mp4", "frame_index": 0, "persons": []}'
            '\n```\n')   # (a result's excerpt: not a config)
    pages = {**config_page(), 'docs/a.md': page}
    assert check_snippet_values(pages, DEFAULTS, validate_value) == [
        'docs/a.md:6: "frame_step": "three" (a config snippet): frame_step '
        "must be a whole number >= 1, got 'three'",
        'docs/a.md:6: "tracking": "yes" (a config snippet): tracking must '
        "be true or false, got 'yes'"]
    assert check_keys(pages, DEFAULTS) == [
        'docs/a.md:10: "trackng" (a config snippet) is not a config key']


def test_a_json_block_is_json_or_marked():
    good = '```json\n{"executor": "ray",\n  ...\n}\n```\n'
    marked = '<!-- not-json -->\n```json\n{"tracking": True}\n```\n'
    bad = 'In config.json:\n\n```json\n{"tracking": True}\n```\n'
    assert broken_json_blocks({'docs/a.md': good + marked}) == []
    problems = broken_json_blocks({'docs/a.md': bad})
    assert len(problems) == 1 and problems[0].startswith(
        'docs/a.md:3: a json block that is not JSON (Expecting value')


def test_a_config_dict_or_keyword_in_python_is_checked():
    """A dict literal with a config key in a ``python`` block, and the
    keywords ``PoseAnalysisService`` takes as overrides, hold real keys
    with values they take; a name's value is not known here."""
    ok = ("```python\nservice = PoseAnalysisService({'input': 'a.mp4', "
          "'tracking': True}, device=device)\nPoseAnalysisService("
          "'config.json', device='cpu')\nx = {'frame_index': 0}\n```\n")
    assert check_python_configs({'docs/a.md': ok}, DEFAULTS,
                                validate_value) == []
    bad = ("Text.\n\n```python\nimport cv2\nservice = PoseAnalysisService("
           "{'input': 'a.mp4', 'trackng': True})\n"
           "PoseAnalysisService('config.json', device='gpu')\n"
           "config = {'frame_step': 0}\n```\n\n```python\nx = (\n```\n")
    problems = check_python_configs({'docs/a.md': bad}, DEFAULTS,
                                    validate_value)
    assert [p.split(' (')[0] for p in problems] == [
        'docs/a.md:5: "trackng"', 'docs/a.md:6: "device": "gpu"',
        'docs/a.md:7: "frame_step": 0',
        'docs/a.md:10: a python block that is not Python: \'(\' was never '
        'closed']
