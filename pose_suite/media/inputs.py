"""Which inputs an ``input`` spec names, and where each one's result goes.

A spec is a file, a folder (its files; with ``recursive`` also those of its
sub-folders), a glob pattern (``**`` matches any depth), a list file
(``.txt``, one path or stream a line, each optionally followed by its own
range: :func:`_list_line`), a camera index or a stream URL.

Results are named so that no two inputs of a run can write the same file:
``<input file name>.json`` (``clip.mp4`` -> ``clip.mp4.json``, so
``clip.jpg`` and ``clip.png`` do not meet), in the same sub-folders below
the output folder as the inputs have below the searched folder (the
folder, the fixed part of a glob pattern, or the folder the list's files
have in common). A camera gets ``camera<N>.json``, a URL
``stream-<host and path>.json`` (the naming rules:
:mod:`pose_suite.config.specs`). Names that would still meet (files
differing only in case, on a filesystem that ignores it) are refused before
any work; so are OpenPose folders that would meet
(:func:`pose_suite.outputs.exports.output_files`).
"""
import dataclasses
import glob
import os
import re
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from pose_suite.config.keys import validate_value
from pose_suite.config.kinds import parse_range
from pose_suite.config.specs import (Source, check_distinct, has_glob,
                                     is_json_file, is_stream, output_name)
from pose_suite.errors import (ConfigError, InputError, OutputError,
                               SuiteWarning)
from pose_suite.media.sniff import (looks_like_media, not_media_reason,
                                   special_file_kind)


@dataclasses.dataclass
class Inputs:
    """The inputs of a run, in order.

    ``base``: the folder whose layout the results mirror (None: file names
    only). ``skipped``: files a folder or pattern search found that are not
    media, with the reason. ``many``: named by a folder, pattern or list
    (a batch, with a summary, even when it holds one input). ``settings``:
    config keys that differ for some sources, by source as in ``sources``
    (a list line's range: ``{'time_range': (12.5, 30.0), 'frame_range':
    None}``, seconds; or a ``frame_range`` of source frame indices).
    """

    sources: List[Source]
    base: Optional[Path] = None
    skipped: List[Tuple[Path, str]] = dataclasses.field(default_factory=list)
    many: bool = False
    settings: Dict[Source, dict] = dataclasses.field(default_factory=dict)

    def settings_for(self, source: Source) -> dict:
        """The config keys that differ for ``source`` ({}: none), for
        ``PoseAnalyser.analyse_input(settings=...)``."""
        return dict(self.settings.get(
            source if is_stream(str(source)) else Path(source), {}))

    @property
    def batch(self) -> bool:
        """Analysed as a batch (summary, per-input lines): several inputs,
        or any named by a folder, pattern or list."""
        return self.many or len(self.sources) > 1

    def output_files(self, output: Path) -> List[Path]:
        """The result file of each source, in order
        (:func:`pose_suite.config.specs.output_name`).

        Args:
            output: a ``.json`` file (for one source) or a folder.
        Raises:
            OutputError: several sources and a ``.json`` file, or two
            sources whose results would be the same file.
        """
        if is_json_file(output):
            if len(self.sources) > 1:
                raise OutputError(f'{len(self.sources)} inputs need an '
                                  f'output folder, not the file {output}')
            return [output]
        files = [output / output_name(source, self.base)
                 for source in self.sources]
        check_distinct(self.sources, files, 'results')
        return files


def expand_inputs(spec: Source, recursive: bool = False,
                  exclude: Union[None, Path, Sequence[Path]] = None,
                  own: Optional[Callable[[Path], bool]] = None) -> Inputs:
    """The inputs named by ``spec``.

    Folders and patterns give their files in name order, hidden ones
    (``.name``) and those inside hidden folders left out, and files that
    are not media by content (see :mod:`pose_suite.media.sniff`) moved to
    ``skipped``. A list file's entries are relative to its folder, and
    each may carry its own range (``Inputs.settings``); an entry named
    twice is analysed once (refused if with different ranges).

    Args:
        recursive: search a folder's sub-folders too.
        exclude: folders whose files are never inputs (the output and
            overlay folders, when they lie inside the searched one).
        own: tells the files the suite wrote itself, which a folder or
            pattern search leaves out (the output folder can be the
            searched one: :func:`pose_suite.outputs.naming.own_outputs_in`).
    Raises:
        InputError: a folder, pattern or list that names no input; a list
        line with a malformed or invalid range (naming the file and line).
    """
    text = str(spec)
    if is_stream(text):
        return Inputs([text])
    if has_glob(text):
        found = [Path(p) for p in sorted(glob.glob(text, recursive=True))
                 if Path(p).is_file()]
        if not found:
            raise InputError(f'no file matches {text}')
        return _searched(found, _fixed_part(text), exclude, own,
                         f'{text} matches')
    path = Path(spec)
    if path.is_dir():
        found = _folder_files(path, recursive)
        if not found:
            raise InputError(f'folder has no file to analyse: {path}'
                             + _recursive_hint(path, recursive))
        return _searched(found, path, exclude, own, f'folder {path} holds',
                         _recursive_hint(path, recursive))
    if path.suffix.lower() == '.txt' and path.is_file():
        return _listed(path)
    return Inputs([path], path.parent)


def _folder_files(folder: Path, recursive: bool) -> List[Path]:
    if not recursive:
        return sorted(p for p in folder.iterdir()
                      if _file_or_special(p) and not p.name.startswith('.'))
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith('.')]
        found += [Path(root) / name for name in files
                  if not name.startswith('.')]
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def _file_or_special(path: Path) -> bool:
    """A regular file, or a FIFO, socket or device (listed to be skipped
    with its reason, never opened)."""
    return path.is_file() or special_file_kind(path) is not None


def _recursive_hint(folder: Path, recursive: bool) -> str:
    if recursive or not any(p.is_dir() and not p.name.startswith('.')
                            for p in folder.iterdir()):
        return ''
    return '; its sub-folders are searched with --recursive'


def _fixed_part(pattern: str) -> Path:
    """The folder a glob pattern starts from: its parts before the first
    one with a wildcard."""
    fixed = []
    for part in Path(pattern).parts[:-1]:
        if has_glob(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path('.')


def _searched(found: List[Path], base: Path,
              exclude: Union[None, Path, Sequence[Path]],
              own: Optional[Callable[[Path], bool]], what: str,
              hint: str = '') -> Inputs:
    excluded = [] if exclude is None else [exclude] \
        if isinstance(exclude, (str, Path)) else list(exclude)
    for folder in excluded:
        folder = Path(folder).resolve()
        if folder != base.resolve() and folder.is_relative_to(
                base.resolve()):
            found = [p for p in found
                     if not p.resolve().is_relative_to(folder)]
    if own is not None:
        found = [path for path in found if not own(path)]
    sources, skipped = [], []
    for path in found:
        try:
            special = special_file_kind(path)
            reason = f'not a regular file ({special})' if special \
                else not_media_reason(path) or _empty_stray(path)
        except OSError:
            reason = None  # unreadable: open_source says so, as a failure
        if reason:
            skipped.append((path, reason))
        else:
            sources.append(path)
    if not sources:
        raise InputError(f'{what} no image or video ({len(skipped)} '
                         f'non-media file(s) skipped){hint}')
    return Inputs(sources, base, skipped, many=True)


def _empty_stray(path: Path) -> Optional[str]:
    """'an empty file' for an empty file not named like media (an empty
    ``Thumbs.db``, ``notes.txt``): skipped, never counted as an input. An
    empty ``clip.mp4`` stays an input, reported as failed (an empty
    file), as when it is the input named."""
    if path.stat().st_size == 0 and not looks_like_media(path):
        return 'an empty file'
    return None


def _listed(list_file: Path) -> Inputs:
    """The inputs of a list file: one a line, ``PATH`` or ``PATH RANGE``
    (:func:`_list_line`); blank lines and ``#`` comments left out. A file
    named twice is analysed once, and only if with the same range.

    Raises:
        InputError: a malformed or invalid range, a file named twice with
        different ranges, or no input at all; naming the file and line.
    """
    lines = list_file.read_text(encoding='utf-8').splitlines()
    sources, settings, seen = [], {}, {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        source, wanted = _list_line(list_file, number, line)
        key = source if isinstance(source, str) else \
            os.path.realpath(source)
        if key in seen:
            _named_again(list_file, line, number, seen[key], wanted)
            continue
        seen[key] = (number, wanted)
        sources.append(source)
        if wanted is not None:
            settings[_absolute(source)] = wanted
    if not sources:
        raise InputError(f'list file names no input: {list_file}')
    files = [Path(os.path.abspath(s)) for s in sources
             if isinstance(s, Path)]
    base = Path(os.path.commonpath([f.parent for f in files])) \
        if files else None
    return Inputs([_absolute(s) for s in sources], base, many=True,
                  settings=settings)


def _absolute(source: Source) -> Source:
    """A list's file as an absolute path; a stream as it is."""
    return source if isinstance(source, str) else \
        Path(os.path.abspath(source))


def _list_line(list_file: Path, number: int, line: str
               ) -> Tuple[Source, Optional[dict]]:
    """The source of one list line and its range as config keys (None: the
    config's). The line's last word is a range when it starts like one
    (``frames:``, a digit, ``-``, ``,`` or ``.``), unless the whole line names an
    existing file (a name with a space and a range-like tail)."""
    words = line.rsplit(None, 1)
    if len(words) == 2 and _RANGE_START.match(words[1]) and \
            not _list_path(list_file, line).is_file():
        return _list_source(list_file, words[0]), _list_range(
            words[1], f'{list_file} line {number}')
    return _list_source(list_file, line), None


#: How a list line's last word starts when it is a range, not a name.
_RANGE_START = re.compile(r'frames:|[-.,0-9]', re.IGNORECASE)


def _list_path(list_file: Path, text: str) -> Path:
    """A list entry as a path: relative ones from the list's folder."""
    return Path(text) if Path(text).is_absolute() else \
        list_file.parent / text


def _list_source(list_file: Path, text: str) -> Source:
    return text if is_stream(text) else _list_path(list_file, text)


def _list_range(word: str, where: str) -> dict:
    """A list line's range as the config keys it sets for that input:
    ``START-END`` seconds on the result's ``timestamp_s`` clock (either
    side may be empty) or ``frames:FIRST-LAST`` source frame indices (the
    last included), validated as ``time_range``/``frame_range`` are.

    Raises:
        InputError: ``where`` (``list.txt line 3``), the range and what is
        wrong with it.
    """
    frames = word.lower().startswith('frames:')
    key = 'frame_range' if frames else 'time_range'
    try:
        body = word[len('frames:'):] if frames else word
        if not body:  # "frames:" alone: parse_range takes "" for none
            raise ConfigError(body)
        ends = parse_range(body, where, '')
    except ConfigError:
        raise InputError(
            f'{where}: {word!r} is not a range: the last word of a line is '
            'START-END in seconds (12.5-30, 90-, -30) or frames:FIRST-LAST '
            '(source frame indices)') from None
    try:
        value = validate_value(key, ends)
    except ConfigError as exc:
        raise InputError(f'{where}: range {word!r}: {exc}') from None
    return {'time_range': None, 'frame_range': None, key: value}


def _named_again(list_file: Path, line: str, number: int,
                 first: Tuple[int, Optional[dict]],
                 wanted: Optional[dict]) -> None:
    """A list names one input twice (line ``number`` and ``first``'s):
    a warning when the ranges are the same (it is analysed once).

    Raises:
        InputError: the ranges differ (both would write one result).
    """
    if first[1] == wanted:
        warnings.warn(f'{list_file} names {line} more than once; it is '
                      'analysed once', SuiteWarning)
        return
    raise InputError(
        f'{list_file} lines {first[0]} and {number} name the same input '
        'with different ranges, and both would write the same result file: '
        'list it once (or analyse a copy of it)')
