"""Every name a run will write, checked against the filesystem before any
work.

An input's name is legal where it lies, but the files made from it are
longer: ``clip.mp4`` gives ``clip.mp4.json`` and, while it is written,
``.clip.mp4.json.partial``, ``.clip.mp4.json.<8 hex>.tmp``, its exports,
their temporary files, OpenPose's staging folders
(``.clip.mp4.json.pose2sim.<8 hex>.partial.old``, 31 bytes more than the
result's name) and frame files. Each of these names must fit the name limit
of the filesystem it goes to (``NAME_MAX``, in bytes of the encoded name:
255 on most), else the run would fail after the analysis, or leave a
partial file behind. :func:`check_outputs` refuses the whole run before any
model loads, naming the input and by how many bytes its name is too long,
or whose whole path would pass the filesystem's path limit (``PATH_MAX``,
4096 bytes with the final NUL on Linux); it also refuses anything but a
regular file (a folder, a link to one) standing where a file of the run
goes, and returns the folders the run writes in, for their locks.
"""
import os
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from pose_suite.config.specs import IMAGE_SUFFIXES, Source, is_stream
from pose_suite.errors import OutputError
from pose_suite.outputs.exports import (MOVEMENT_FOLDER_FORMATS, _made_from_path,
                                        export_path)
from pose_suite.outputs.lock import FOLDER_LOCK
from pose_suite.outputs.openpose import (FOLDER_FORMATS, frame_file_name,
                                         old_folder, result_name,
                                         staging_folder)
from pose_suite.outputs.overlay import overlay_path, temporary_overlay
from pose_suite.outputs.publish import temporary_path
from pose_suite.outputs.writer import lock_path, partial_path

#: The limit where the filesystem does not say (POSIX's usual one).
DEFAULT_NAME_MAX = 255
#: The path limit where the filesystem does not say (Linux's), NUL included.
DEFAULT_PATH_MAX = 4096
#: What a batch writes in its output folder besides the results.
BATCH_FILES = ('summary.csv', 'summary.json', 'report.html')
#: Stands for the random part of a temporary name (8 hex digits).
_TOKEN = '0' * 8
#: The OpenPose frame number with the most digits (12, from 0).
_LAST_FRAME = 10 ** 12 - 1


def run_lock_path(output_file: Path) -> Path:
    """The lock a run of one input holds on its result from before the
    models load (:mod:`pose_suite.outputs.lock`): ``.<name>.run.lock``."""
    output_file = Path(output_file)
    return output_file.with_name(f'.{output_file.name}.run.lock')


def written_paths(output_file: Path, source: Source, kind: str,
                  export_formats: Sequence[str] = (),
                  overlay: Optional[Path] = None,
                  segment_of: Optional[Callable[[Path], Path]] = None
                  ) -> Iterator[Tuple[str, Path]]:
    """Each file and folder the run writes for one input, as (what, path):
    its result, partial, lock and temporary files, its exports and theirs,
    OpenPose's folders and frame files (``kind``: ``image`` names them
    without a frame number), the overlay and its temporary file, and with
    ``segment_of`` (the longest name of a segment file of a result, when a
    long video may be cut for Ray) the segment files and theirs.
    """
    for what, path in _result_files('result', output_file):
        yield what, path
    yield 'run lock', run_lock_path(output_file)
    if export_formats:
        manifest = _made_from_path(Path(output_file))
        yield 'exports record', manifest
        yield 'exports record (temporary)', temporary_path(manifest, _TOKEN)
    for fmt in export_formats:
        target = export_path(output_file, fmt, str(source))
        if fmt in MOVEMENT_FOLDER_FORMATS:
            yield 'movement folder', target
            continue
        if fmt in FOLDER_FORMATS:
            staging = staging_folder(output_file, fmt, _TOKEN)
            yield f'{fmt} folder', target
            yield f'{fmt} folder (temporary)', staging
            yield f'{fmt} folder (previous)', old_folder(staging)
            yield f'{fmt} frame file', target / frame_file_name(
                result_name(output_file, str(source)), _LAST_FRAME,
                kind == 'image' and fmt == 'openpose')
        else:
            yield f'{fmt} export', target
            yield f'{fmt} export (temporary)', temporary_path(target, _TOKEN)
    if overlay is not None:
        yield 'overlay', overlay
        yield 'overlay (temporary)', temporary_overlay(overlay)
    if segment_of is not None and kind == 'video':
        for what, path in _result_files('segment', segment_of(output_file)):
            yield what, path


def _result_files(what: str, output_file: Path
                  ) -> Iterator[Tuple[str, Path]]:
    """A file written by :class:`~pose_suite.outputs.writer.ResultWriter`
    and the files it makes on the way."""
    yield what, Path(output_file)
    yield f'{what} (partial)', partial_path(output_file)
    yield f'{what} (temporary)', temporary_path(output_file, _TOKEN)
    yield f'{what} lock', lock_path(output_file)


def name_max(folder: Path, cache: Optional[Dict[Path, int]] = None,
             name: str = 'PC_NAME_MAX', default: int = DEFAULT_NAME_MAX
             ) -> int:
    """The longest file name, in bytes, the filesystem of ``folder`` (or of
    its nearest existing parent, when it is still to be made) allows (or
    its limit ``name``: ``PC_PATH_MAX``, the longest path with its NUL)."""
    if cache is not None and (folder, name) in cache:
        return cache[folder, name]
    existing = Path(os.path.abspath(folder))
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    try:
        limit = os.pathconf(existing, name)
    except (OSError, ValueError):
        limit = -1
    limit = limit if limit and limit > 0 else default
    if cache is not None:
        cache[folder, name] = limit
    return limit


def batch_paths(folder: Path) -> Iterator[Tuple[str, Path]]:
    """The files a batch writes in its output ``folder`` besides the
    results: its summary, report and their temporary files."""
    for name in BATCH_FILES:
        yield name, Path(folder) / name
        yield f'{name} (temporary)', temporary_path(Path(folder) / name,
                                                    _TOKEN)


def guessed_kind(source: Source) -> str:
    """An input's kind by its name, before it is opened (a batch opens
    each input only when its turn comes)."""
    text = str(source)
    if text.isdigit() or is_stream(text):
        return 'stream'
    return 'image' if Path(text).suffix.lower() in IMAGE_SUFFIXES \
        else 'video'


def check_outputs(sources: Sequence[Source], files: Sequence[Path],
                  kinds: Sequence[str], output: Path,
                  export_formats: Sequence[str] = (),
                  overlays: Optional[Path] = None,
                  segment_of: Optional[Callable[[Path], Path]] = None,
                  batch_folder: Optional[Path] = None) -> List[Path]:
    """Refuse, before any work, a run that would write a name or path
    longer than its filesystem allows, or one of whose files stands as
    anything but a regular file (a folder, say).

    Args:
        sources, files, kinds: each input, its result file and its kind.
        output: the config's ``output``; overlays: its
            ``visualize_output`` (None: off); segment_of: see
            :func:`written_paths`; batch_folder: where a batch writes its
            summary (None: not a batch).
    Returns:
        The folders the run writes files in (its folder exports' insides
        left out), each once, in order.
    Raises:
        OutputError: one line naming the input and the name.
    """
    cache: Dict[Tuple[Path, str], int] = {}
    folders: Dict[Path, None] = {}
    for source, file, kind in zip(sources, files, kinds):
        overlay = None
        if overlays is not None:  # a file, or a folder of them
            overlay = Path(overlays) if Path(overlays).suffix else \
                overlay_path(overlays, kind, file, output)
        paths = list(written_paths(file, source, kind, export_formats,
                                   overlay, segment_of))
        _check_all(f'input {source}', paths, folders, cache)
    if batch_folder is not None:
        _check_all(f'the batch into {batch_folder}',
                   list(batch_paths(batch_folder)), folders, cache)
    return list(folders)


def _check_all(who: str, paths: List[Tuple[str, Path]],
               folders: Dict[Path, None],
               cache: Dict[Tuple[Path, str], int]) -> None:
    """Check ``paths`` (and the folder lock beside each, noted in
    ``folders``) for one input (``who``: ``input NAME``)."""
    for what, path in list(paths):
        if not what.endswith(' frame file') and path.parent not in folders:
            folders[path.parent] = None
            paths.append(('folder lock', path.parent / FOLDER_LOCK))
    _check_lengths(who, paths, cache)
    _check_path_lengths(who, paths, cache)
    _check_no_folder_stands(who, paths)


def _check_lengths(who: str, paths: List[Tuple[str, Path]],
                   cache: Dict[Tuple[Path, str], int]) -> None:
    """The longest name over its limit, if any, as one error."""
    worst = None
    for what, path in paths:
        size = len(os.fsencode(path.name))
        excess = size - name_max(path.parent, cache)
        if excess > 0 and (worst is None or excess > worst[0]):
            worst = (excess, what, size, size - excess)
    if worst is not None:
        excess, what, size, limit = worst
        raise OutputError(
            f'the name of {who} is too long for the files made '
            f'from it: its {what} would be named with {size} bytes, where '
            f'the filesystem allows {limit}; shorten it by {excess} '
            f'byte{"s" if excess > 1 else ""} or more (nothing was '
            'analysed)')


def _check_path_lengths(who: str, paths: List[Tuple[str, Path]],
                        cache: Dict[Tuple[Path, str], int]) -> None:
    """A whole path (absolute, in bytes, with its NUL) over the limit
    fails when written, after the analysis."""
    for what, path in paths:
        size = len(os.fsencode(os.path.abspath(path)))
        limit = name_max(path.parent, cache, 'PC_PATH_MAX', DEFAULT_PATH_MAX)
        if size >= limit:
            raise OutputError(
                f'the path of the {what} of {who} would have '
                f'{size} bytes, where the filesystem allows {limit - 1}; '
                'choose a shorter output folder or input name (nothing was '
                'analysed)')


#: What is written as a folder, not a file.
_FOLDERS = (' folder', ' folder (temporary)', ' folder (previous)')


def _check_no_folder_stands(who: str,
                            paths: List[Tuple[str, Path]]) -> None:
    """Anything but a regular file (a folder, a link to one, a FIFO)
    where a file of the run goes would take the file inside it, or fail
    the input after its analysis (a link to a lock file is refused when
    it is opened, :mod:`pose_suite.outputs.lock`)."""
    for what, path in paths:
        if what.endswith(_FOLDERS):
            continue
        if os.path.lexists(path) and not path.is_file():
            kind = 'a folder' if path.is_dir() else 'not a regular file'
            raise OutputError(
                f'{path} is {kind}, where {who} would write its '
                f'{what} file: move or rename it (nothing was analysed)')


def check_output_not_folder(output: Path, batch: bool) -> None:
    """A run of one input whose ``output`` names a ``.json`` file that is
    a folder would put its result inside it: refused."""
    output = Path(output)
    if not batch and output.suffix.lower() == '.json' and output.is_dir():
        raise OutputError(
            f'output {output} is a folder named like a result file; give '
            'the result file another name, or a folder without .json '
            '(nothing was analysed)')
