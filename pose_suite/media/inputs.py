"""Which inputs an ``input`` spec names, and where each one's result goes.

A spec is a file, a folder (its files; with ``recursive`` also those of its
sub-folders), a glob pattern (``**`` matches any depth), a list file
(``.txt``, one path or stream a line), a camera index or a stream URL.

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
import warnings
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

from pose_suite.config.specs import (Source, check_distinct, has_glob,
                                     is_json_file, is_stream, output_name)
from pose_suite.errors import InputError, OutputError, SuiteWarning
from pose_suite.media.sniff import (looks_like_media, not_media_reason,
                                   special_file_kind)


@dataclasses.dataclass
class Inputs:
    """The inputs of a run, in order.

    ``base``: the folder whose layout the results mirror (None: file names
    only). ``skipped``: files a folder or pattern search found that are not
    media, with the reason. ``many``: named by a folder, pattern or list
    (a batch, with a summary, even when it holds one input).
    """

    sources: List[Source]
    base: Optional[Path] = None
    skipped: List[Tuple[Path, str]] = dataclasses.field(default_factory=list)
    many: bool = False

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
    ``skipped``. A list file's entries are relative to its folder; an entry
    named twice is analysed once.

    Args:
        recursive: search a folder's sub-folders too.
        exclude: folders whose files are never inputs (the output and
            overlay folders, when they lie inside the searched one).
        own: tells the files the suite wrote itself, which a folder or
            pattern search leaves out (the output folder can be the
            searched one: :func:`pose_suite.outputs.naming.own_outputs_in`).
    Raises:
        InputError: a folder, pattern or list that names no input.
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
    lines = [line.strip() for line in
             list_file.read_text(encoding='utf-8').splitlines()]
    sources, seen = [], set()
    for line in lines:
        if not line or line.startswith('#'):
            continue
        source = line if is_stream(line) else (
            Path(line) if Path(line).is_absolute()
            else list_file.parent / line)
        key = source if isinstance(source, str) else \
            os.path.realpath(source)
        if key in seen:
            warnings.warn(f'{list_file} names {line} more than once; it is '
                          'analysed once', SuiteWarning)
            continue
        seen.add(key)
        sources.append(source)
    if not sources:
        raise InputError(f'list file names no input: {list_file}')
    files = [Path(os.path.abspath(s)) for s in sources
             if isinstance(s, Path)]
    base = Path(os.path.commonpath([f.parent for f in files])) \
        if files else None
    return Inputs([Path(os.path.abspath(s)) if isinstance(s, Path) else s
                   for s in sources], base, many=True)
