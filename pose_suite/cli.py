"""The command-line edge of ``pose_analysis_service.py``: flags, the one
``error:`` line per user error, signals, and the summary lines.

Everything here speaks to a person at a terminal; the analysis itself is
``PoseAnalysisService``'s.
"""
import argparse
import signal
import sys
import warnings
from pathlib import Path
from typing import List, Optional, Tuple

from pose_suite.batch.claim import claim_outputs
from pose_suite.batch.local import (BatchResult, exports_note, kept_note,
                                    publish_summary, run_local)
from pose_suite.config import build_config, load_config
from pose_suite.config.keys import (DEFAULTS, EXPORT_FORMATS, HELP,
                                    flag_name, parse_flag)
from pose_suite.config.specs import check_overlay_name
from pose_suite.errors import (ConfigError, OneLineParser, SuiteError,
                               show_warnings_as_one_line, visible)
from pose_suite.media.inputs import expand_inputs
from pose_suite.media.selection import FrameSelection
from pose_suite.media.sources import open_source
from pose_suite.movement import MovementSettings
from pose_suite.movement.derive import wanted
from pose_suite.outputs.movement_files import check_movement_folder
from pose_suite.outputs.naming import output_files as plan_output_files
from pose_suite.outputs.naming import own_outputs_in
from pose_suite.outputs.overlay import overlay_path


#: Flags of the keys that say what part of an input to analyse, with the
#: metavar shown by --help.
SELECTION_FLAGS = {'time_range': 'START-END', 'frame_range': 'FIRST-LAST',
                   'frame_step': 'N', 'target_fps': 'FPS',
                   'max_persons': 'N', 'person_order': 'ORDER'}
#: Flags of the movement keys (pose_suite.movement), with their metavar.
MOVEMENT_FLAGS = {'interp_max_gap': 'FRAMES', 'interp_kind': 'KIND',
                  'fill_large_gaps': 'HOW', 'hampel': 'true|false|JSON',
                  'filter': 'TYPE[,name=value...]',
                  'person_height_m': 'METRES', 'floor_angle': 'DEGREES',
                  'floor_origin': 'X,Y'}


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``pose_analysis_service.py``'s flags (the one
    :func:`run_command` parses with; the documentation test reads it)."""
    # The same name whether run as the script or as the `pose-analysis`
    # command (pyproject.toml), so that both print the same help.
    parser = OneLineParser(
        prog='pose_analysis_service.py',
        description='Whole-body pose (133 keypoints) for every person in '
                    'every frame of an image or video, written as JSON.')
    parser.add_argument('--config', default='config.json',
                        help='config file (default: config.json; create it '
                             'with creating_config.py)')
    parser.add_argument('--input', help='image, video, folder, glob, list '
                        'file (.txt), camera index or stream URL (overrides '
                        'config)')
    parser.add_argument('--output',
                        help='JSON file or folder (overrides config)')
    parser.add_argument('--device',
                        help='cpu, cuda, cuda:N or auto (overrides config)')
    parser.add_argument('--resume', action='store_true', default=None,
                        help='continue an interrupted run from its last '
                             'completed frame')
    parser.add_argument('--format', dest='export_formats', action='append',
                        choices=EXPORT_FORMATS,
                        help='also write this format beside the JSON '
                             '(repeatable; overrides config)')
    parser.add_argument('--angles', nargs='?', const=True, default=None,
                        type=_true_false, metavar='true|false',
                        help='also write joint and segment angles; '
                             '--angles false (or --no-angles): not '
                             '(overrides config)')
    parser.add_argument('--no-angles', dest='angles', action='store_false',
                        help='the same as --angles false')
    parser.add_argument('--quiet', action='store_true', default=None,
                        help='no progress bar and no summary line')
    parser.add_argument('--executor', choices=('local', 'ray'),
                        help='local: one input after another here; ray: '
                             'spread over Ray workers (overrides config)')
    parser.add_argument('--recursive', '-r', action='store_true',
                        default=None, help='search a folder input\'s '
                        'sub-folders too (overrides config)')
    for key, example in SELECTION_FLAGS.items():
        parser.add_argument(flag_name(key), dest=key, metavar=example,
                            help=f'{HELP[key]} (overrides config)')
    for key, example in MOVEMENT_FLAGS.items():
        parser.add_argument(flag_name(key), dest=key, metavar=example,
                            help=f'{HELP[key]} (overrides config)')
    parser.add_argument('--postprocess', metavar='OUTPUT',
                        help='only make the movement data and exports of '
                             'the finished results OUTPUT (a result JSON or '
                             'a folder of them) again, with the config\'s '
                             'settings and these flags; no model is loaded '
                             'and nothing is analysed')
    parser.add_argument('--report', metavar='OUTPUT_FOLDER',
                        help='only rebuild summary.csv and report.html '
                             'from the results in this folder (nothing is '
                             'analysed; --config is not read)')
    return parser


def run_command(argv: Optional[List[str]], service_class) -> int:
    """Parse the command line, run ``service_class`` (``PoseAnalysisService``)
    on the inputs, and turn every user error into one line; returns the
    exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    show_warnings_as_one_line()
    if args.report is not None:
        return _rebuild_report(Path(args.report))
    if args.postprocess is not None:
        return _postprocess(args)
    received = _stop_on_signals()
    service = config = run_lock = None
    try:
        config = load_config(Path(args.config), flag_overrides(args))
        inputs = expand_inputs(
            config.input, config.recursive,
            exclude=[path for path in (config.output, config.visualize_output)
                     if path is not None],
            own=own_outputs_in([config.output, config.visualize_output]))
        # Before any work: two inputs never write the same file.
        output_files = plan_output_files(inputs, config.output,
                                         config.export_formats,
                                         config.visualize_output)
        if not inputs.batch:
            source = open_source(inputs.sources[0])  # before the models
            # A range past the end, a rate above the video's: said now
            # (on Ray, its workers say the warnings).
            with warnings.catch_warnings():
                if config.executor == 'ray':
                    warnings.simplefilter('ignore')
                plan = FrameSelection.from_config(config).plan(source)
            if config.visualize_output:
                overlay_path(config.visualize_output, source.kind,
                             output_files[0], config.output)
        elif config.visualize_output:
            check_overlay_name(config.visualize_output, len(inputs.sources))
        if wanted(MovementSettings.from_config(config),
                  config.export_formats):  # before any work
            for file in output_files:
                check_movement_folder(file)
        # Names checked and the output locked before models or Ray start.
        run_lock = claim_outputs(config, inputs, output_files,
                                 None if inputs.batch else source)
        _quiet_library_logs()
        if config.executor == 'ray':
            from pose_suite.batch.ray_executor import run_on_ray

            # One input: no summary files, as in a local run.
            return _report_many(run_on_ray(config, inputs), config,
                                summary_files=inputs.batch)
        service = service_class(config)
        if inputs.batch:
            return _report_many(run_local(service, inputs), config)
        _report_skipped(inputs.skipped)
        done = service.analyse_input(inputs.sources[0], output_files[0],
                                     source=source, plan=plan)
    except SuiteError as exc:
        print(f'error: {visible(exc)}', file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        writer = getattr(service, 'writer', None)
        if config is not None and config.executor == 'ray' and \
                not getattr(exc, 'ray_workers_started', False):
            print('error: interrupted before any Ray worker started; no '
                  'output written', file=sys.stderr)
        elif config is not None and config.executor == 'ray':
            print('error: interrupted; the Ray workers were stopped and the '
                  f'unfinished results are kept as partial files in '
                  f'{visible(config.output)}: run again with --resume to continue',
                  file=sys.stderr)
        elif getattr(service, 'published', None) is not None:
            print(f'error: interrupted after {visible(service.published)} '
                  'was written, before all its exports or movement data: '
                  'run again with --resume to write them', file=sys.stderr)
        elif writer is not None and writer.frame_count:
            print(f'error: interrupted after {writer.frame_count} frame(s); '
                  f'they are kept in {visible(writer.partial_path)}: run again with '
                  '--resume to continue', file=sys.stderr)
        else:
            print('error: interrupted; no output written', file=sys.stderr)
        return 128 + received.get('signal', signal.SIGINT)
    finally:
        if run_lock is not None:
            run_lock.release()
    if config.quiet:
        return 0
    if done.status == 'up to date':
        print(f'up to date: {visible(done.output)} (the models\' results '
              'are kept: made from the same input and model '
              f'settings){exports_note(done)}')
    else:
        print(f'{done.frames} frame(s), {done.persons} person(s) in '
              f'{done.seconds:.1f} s{kept_note(done)} -> '
              f'{visible(done.output)}')
    return 0


def flag_overrides(args) -> dict:
    """The config values the parsed flags ``args`` set, not yet validated
    (:func:`pose_suite.config.load_config` validates them): a run's, or
    with ``--postprocess`` only the exports' and movement keys' ({} with
    ``--report``, which reads no config). Reads no file.

    Raises:
        ConfigError: a range, step, person or movement flag whose text is
            no value of its key.
    """
    if args.report is not None:
        return {}
    keys = ('export_formats', 'angles') if args.postprocess is not None \
        else ('input', 'output', 'device', 'resume', 'export_formats',
              'angles', 'quiet', 'recursive', 'executor')
    overrides = {key: getattr(args, key) for key in keys
                 if getattr(args, key) is not None}
    if args.postprocess is None:
        overrides.update(_selection_flags(args))
    overrides.update(_movement_flags(args))
    return overrides


def _movement_flags(args) -> dict:
    """The movement flags given, as config values."""
    return {key: parse_flag(key, getattr(args, key))
            for key in MOVEMENT_FLAGS if getattr(args, key) is not None}


def _postprocess(args) -> int:
    """``--postprocess OUTPUT``: the movement data and exports of
    finished results again, without the models (exit 1: any failed)."""
    from pose_suite.movement.finished import postprocess
    try:
        overrides = flag_overrides(args)
        config_file = Path(args.config)
        config = load_config(config_file, overrides) \
            if config_file.exists() or args.config != 'config.json' \
            else build_config(overrides)
        done = postprocess(Path(args.postprocess), config)
    except SuiteError as exc:
        print(f'error: {visible(exc)}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('error: interrupted; the results are untouched, and each '
              'movement folder is the one before or the new one, whole',
              file=sys.stderr)
        return 128 + signal.SIGINT
    for path, reason in done.failures:
        print(f'warning: {visible(path)} failed: {visible(reason)}',
              file=sys.stderr)
    count = len(done.written)
    if done.failures:
        print(f'error: {len(done.failures)} result(s) could not be '
              f'post-processed (listed above); {count} output(s) written',
              file=sys.stderr)
        return 1
    print(f'{count} output(s) written in {done.seconds:.1f} s: '
          + ', '.join(visible(path) for path in done.written[:3])
          + (', ...' if count > 3 else ''))
    return 0


def _selection_flags(args) -> dict:
    """The range, step and person flags given, as config values; a flag
    that sets one key of a pair (time_range, frame_range) clears the other
    one's config value."""
    given = {key: parse_flag(key, getattr(args, key))
             for key in SELECTION_FLAGS if getattr(args, key) is not None}
    for one, other in (('time_range', 'frame_range'),
                       ('frame_step', 'target_fps')):
        if one in given and other not in given:
            given[other] = DEFAULTS[other]
        elif other in given and one not in given:
            given[one] = DEFAULTS[one]
    return given


def _report_many(result: BatchResult, config,
                 summary_files: bool = True) -> int:
    """The summary of a batch, as files (summary.csv, report.html; with
    ``summary_files``) and lines: exit status 1 if any input failed (the
    others' results are kept); non-media files are no failure."""
    if summary_files:
        publish_summary(config, result)
    _report_skipped(result.skipped)
    for path, reason in result.failures:
        print(f'warning: {visible(path)} failed: {visible(reason)}',
              file=sys.stderr)
    if result.failures:
        total = len(result.outputs) + len(result.up_to_date) + \
            len(result.failures)
        others = '; the others were written' \
            if len(result.failures) < total else ''
        print(f'error: {len(result.failures)} of {total} input(s) failed '
              f'(listed above){others} ({result.summary()})',
              file=sys.stderr)
        return 1
    if not config.quiet:
        print(result.summary())
    return 0


def _rebuild_report(folder: Path) -> int:
    """``--report FOLDER``: summary.csv/.json and report.html again, from
    the results there and the failures an earlier summary listed."""
    from pose_suite.outputs.report import publish
    from pose_suite.outputs.summary import rows_from_folder
    if not folder.is_dir():
        print(f'error: not a folder: {visible(folder)}', file=sys.stderr)
        return 1
    rows = rows_from_folder(folder)
    if not rows:
        print(f'error: no results of this suite in {visible(folder)}',
              file=sys.stderr)
        return 1
    written = publish(folder, lambda: rows)
    if len(written) < 3:
        return 1  # the warning said why
    print(f'{len(rows)} input(s): ' + ', '.join(map(visible, written)))
    return 0


def _report_skipped(skipped: List[Tuple[str, str]]) -> None:
    """One line for the files a folder or pattern held that are not media
    (notes, subtitles, earlier results...), naming the first few."""
    if skipped:
        names = ', '.join(visible(Path(str(path)).name)
                          for path, _ in skipped[:5])
        more = ', ...' if len(skipped) > 5 else ''
        print(f'warning: skipped {len(skipped)} non-media file(s): '
              f'{names}{more}', file=sys.stderr)


def _true_false(text: str) -> bool:
    """``--angles true``/``false`` (yes/no, on/off, 1/0) as a bool."""
    try:
        return parse_flag('angles', text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _stop_on_signals() -> dict:
    """Make SIGTERM stop a run as Ctrl-C (SIGINT) does; returns a dict
    that gets ``signal`` set to the number of the signal received."""
    received = {}

    def handler(signum, frame):
        received['signal'] = signum
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return received


def _quiet_library_logs() -> None:
    import logging

    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel(logging.ERROR)
