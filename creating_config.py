"""Create or edit config.json.

    python creating_config.py                 # write a complete config.json
    python creating_config.py --bbox-thr 0.5  # change just that key
    python creating_config.py --show          # print the effective config
    python creating_config.py --reset         # every key back to its default
    python creating_config.py --angles        # a true/false key alone: true

When the file exists it is kept: keys it lacks are filled with defaults and
only the keys given as flags change. An invalid value is refused with one
line and the file is left untouched. A config written outside this project
(e.g. with `pose-config` in a folder of your own) names this project's
model files by their full paths, where its own folder lacks them.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from pose_suite.config import read_config_file, validate_dict
from pose_suite.config.keys import (BY_NAME, DEFAULTS, HELP, Flag, flag_name,
                                    parse_flag, validate_value)
from pose_suite.errors import (ConfigError, OneLineParser,
                               show_warnings_as_one_line, visible)
from pose_suite.outputs.publish import atomic_write

#: The project's folder: the default model paths name its config_files/.
PROJECT = Path(__file__).resolve().parent
#: The keys whose defaults are files of the project.
MODEL_KEYS = ('det_config', 'det_checkpoint', 'pose_config',
              'pose_checkpoint')


def write_config(path: Path, values: dict) -> None:
    """Write ``values`` as indented JSON, atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, encoding='utf-8') as handle:
        json.dump(values, handle, indent=2)
        handle.write('\n')


def anchored(values: dict, config: Path) -> dict:
    """``values`` with each default model path that the folder of
    ``config`` lacks made the project's full path. A relative path is read
    from config.json's folder, and only the project's holds
    ``config_files/`` (where ``make weights`` puts the checkpoints)."""
    folder = Path(config).resolve().parent
    if folder == PROJECT:
        return values
    return {key: str(PROJECT / value)
            if key in MODEL_KEYS and value == DEFAULTS[key]
            and not (folder / value).exists() else value
            for key, value in values.items()}


def build_parser() -> argparse.ArgumentParser:
    """The parser of this script's flags: --config, --show, --reset and one
    flag per key of :data:`pose_suite.config.keys.DEFAULTS`."""
    parser = OneLineParser(
        prog='creating_config.py',  # also as `pose-config` (pyproject.toml)
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 1)[1])
    parser.add_argument('--config', type=Path, default=Path('config.json'),
                        help='file to create or edit (default: config.json)')
    parser.add_argument('--show', action='store_true',
                        help='print the effective config')
    parser.add_argument('--reset', action='store_true',
                        help='start from the defaults, not from the file')
    for key, default in DEFAULTS.items():
        # A true/false key given alone (--angles) means true.
        alone = {'nargs': '?', 'const': 'true'} \
            if isinstance(BY_NAME[key].kind, Flag) else {}
        parser.add_argument(flag_name(key), dest=key, metavar='VALUE',
                            help=f'{HELP[key]} (default: {json.dumps(default)})', **alone)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    show_warnings_as_one_line()
    changes = {key: getattr(args, key) for key in DEFAULTS
               if getattr(args, key) is not None}
    try:
        exists = args.config.exists()
        current = read_config_file(args.config) \
            if exists and not args.reset else {}
        for key, text in changes.items():
            current[key] = validate_value(key, parse_flag(key, text))
        values = anchored(validate_dict(current), args.config)
        unknown = {k: v for k, v in current.items() if k not in DEFAULTS}
        # --show alone only shows, even when the file does not exist yet.
        if changes or args.reset or not args.show:
            write_config(args.config, {**values, **unknown})
            what = 'updated' if exists and not args.reset else 'wrote'
            print(f'{what} {visible(args.config)}', file=sys.stderr)
    except ConfigError as exc:
        print(f'error: {visible(exc)}', file=sys.stderr)
        return 1
    except OSError as exc:
        print(f'error: cannot write {visible(args.config)}: '
              f'{exc.strerror or exc}',
              file=sys.stderr)
        return 1
    if args.show:
        print(json.dumps(values, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
