"""Every file a run writes, by name: checked before any work, and never
taken for an input.

A result is ``<input file name>.json`` (:mod:`pose_suite.config.specs`);
beside it go its exports (``.csv``, ``.coco.json``, ``.mmpose.json``,
OpenPose's ``<stem>_json/`` folders), a batch's ``summary.csv``,
``summary.json`` and ``report.html`` in the output folder, and overlays
named ``<input file name>.overlay.<ext>``. When the output folder is (or
lies inside) the folder searched for inputs, as in Pose2Sim's layout, the
next run finds all of these there: they are the suite's own and are left
out of the inputs, not listed as files that are not media.
"""
import re
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from pose_suite.config.specs import check_distinct, is_json_file, is_stream
from pose_suite.errors import OutputError
from pose_suite.media.inputs import Inputs
from pose_suite.outputs.exports import SUFFIXES, export_path
from pose_suite.outputs.movement_files import in_movement_folder
from pose_suite.outputs.openpose import (FOLDER_FORMATS, OWNER_FILE,
                                         check_owner, folder_path,
                                         foreign_entries, is_openpose_file)
from pose_suite.outputs.overlay import overlay_path
from pose_suite.outputs.results import is_result, starts_with
from pose_suite.outputs.summary import BATCH_FILES

#: ... and of the batch's own files (a user's file of that name is not).
_BATCH_FILE_HEADS = {'summary.csv': b'input,status,reason,',
                     'summary.json': b'{\n "made_at": ',
                     'report.html': b'<!DOCTYPE html>'}
#: An overlay: ``<input file name>.overlay.<ext>``.
_OVERLAY = re.compile(r'^(?P<input>.+)\.overlay\.[A-Za-z0-9]+$')


def output_files(inputs: Inputs, output: Path,
                 export_formats: Sequence[str] = (),
                 overlays: Optional[Path] = None) -> List[Path]:
    """The result file of each input, in order
    (:meth:`~pose_suite.media.inputs.Inputs.output_files`), checked before
    any work: no two inputs may write the same OpenPose folder
    (``cam01.mp4`` and ``cam01.mov`` both make ``cam01_json``), nor replace
    a folder of the user's that has such a name, nor one written for
    another result that is still there (``cam.png``'s, of an earlier run);
    in a batch no input's result or export may be one of the batch's own
    files (a photo named ``summary`` would write ``summary.json``); no two
    inputs may plan the same file (a result, an export of any format, an
    overlay: ``p.jpg``'s angles export and ``p.jpg.angles``'s csv are both
    ``p.jpg.angles.csv``); and nothing written (result, export, summary,
    overlay in the folder ``overlays``) may be an input.


    Raises:
        OutputError: naming the inputs and the file.
    """
    files = inputs.output_files(output)
    for fmt in set(export_formats) & set(FOLDER_FORMATS):
        folders = [folder_path(file, fmt, source)
                   for source, file in zip(inputs.sources, files)]
        check_distinct(inputs.sources, folders, f'{fmt} files')
        for file, folder in zip(files, folders):
            check_owner(folder, file, fmt)  # another result's (cam.png's)
            foreign = foreign_entries(folder)
            if foreign:
                raise OutputError(
                    f'{folder} holds files this suite did not write '
                    f'({", ".join(foreign[:3])}); its {fmt} export would '
                    'replace them: move them, or write the results '
                    'elsewhere')
    _check_no_two_inputs_write_one(_planned(inputs, files, output,
                                            export_formats, overlays))
    _check_no_input_is_written(inputs, files, output, export_formats,
                               overlays)
    if inputs.batch and not is_json_file(output):
        reserved = {str(output / name).casefold(): name
                    for name in BATCH_FILES}
        for source, file in zip(inputs.sources, files):
            for path in [file] + [export_path(file, fmt, source)
                                  for fmt in export_formats]:
                name = reserved.get(str(path).casefold())
                if name:
                    raise OutputError(
                        f'input {source} would write {path}, the batch\'s '
                        f'own {name}: rename it or choose another output '
                        'folder')
    return files


def _planned(inputs: Inputs, files: List[Path], output: Path,
             export_formats: Sequence[str],
             overlays: Optional[Path]) -> List[tuple]:
    """``(source, path, what)`` of every file or folder each input may
    write: its result, its exports, its overlay (as an image's and as a
    video's, the kind unknown yet) in the folder ``overlays``."""
    planned = []
    for source, file in zip(inputs.sources, files):
        planned += [(source, file, 'result')] + [
            (source, export_path(file, fmt, source), f'{fmt} export')
            for fmt in export_formats]
        if overlays is not None and not Path(overlays).suffix:
            planned += [(source, overlay_path(overlays, kind, file, output),
                         'overlay') for kind in ('image', 'video')]
    return planned


def _check_no_two_inputs_write_one(planned: List[tuple]) -> None:
    """Refuse two inputs that would write the same file (compared
    without case, which some filesystems ignore)."""
    first_of = {}
    for source, path, what in planned:
        other, other_what = first_of.setdefault(str(path).casefold(),
                                                (source, what))
        if other != source:
            raise OutputError(
                f'inputs {other} and {source} would both write {path} (as '
                f'the {other_what} of one and the {what} of the other): '
                'rename one')


def _check_no_input_is_written(inputs: Inputs, files: List[Path],
                               output: Path, export_formats: Sequence[str],
                               overlays: Optional[Path]) -> None:
    """Refuse a run that would write over one of its own inputs (a
    photo named ``summary.csv`` in the output folder, a photo named like
    another input's overlay)."""
    sources = {str(Path(source).resolve()).casefold(): source
               for source in inputs.sources if not is_stream(str(source))}
    written = []
    for source, file in zip(inputs.sources, files):
        written += [(source, file)] + [
            (source, export_path(file, fmt, source))
            for fmt in export_formats if fmt not in FOLDER_FORMATS]
        if overlays is not None and not Path(overlays).suffix:
            written += [(source, overlay_path(overlays, kind, file, output))
                        for kind in ('image', 'video')]
    if inputs.batch and not is_json_file(output):
        written += [('the batch', output / name) for name in BATCH_FILES]
    for writer, path in written:
        victim = sources.get(str(Path(path).resolve()).casefold())
        if victim is not None:
            raise OutputError(
                f'{path} is an input, and {writer} would write over it '
                '(as its result, export, summary or overlay): rename it or '
                'write the results elsewhere')


def own_outputs_in(folders: Sequence[Optional[Path]]
                   ) -> Callable[[Path], bool]:
    """A test of whether a file is one this suite wrote in ``folders``
    (the output folder, the overlay folder): a result, export, OpenPose
    file, summary, report or overlay there. The input search leaves such
    files out (:func:`pose_suite.media.inputs.expand_inputs`)."""
    roots = [Path(folder).resolve() for folder in folders
             if folder is not None and not is_json_file(Path(folder))]

    def own(path: Path) -> bool:
        return any(Path(path).resolve().is_relative_to(root)
                   for root in roots) and is_own_output(path, roots)

    return own


def is_own_output(path: Path, roots: Sequence[Path] = ()) -> bool:
    """Whether ``path`` is named and made as a file this suite writes (see
    the module's docstring); ``roots``: the output folders, where a
    batch's summary and report are."""
    path = Path(path)
    name = path.name
    if name in BATCH_FILES:
        return path.parent.resolve() in roots and \
            starts_with(path, _BATCH_FILE_HEADS[name])
    if is_result(path):
        return True
    for suffix in SUFFIXES.values():  # an export beside its result
        if name.endswith(suffix) and name != suffix and \
                is_result(path.with_name(name[:-len(suffix)] + '.json')):
            return True
    overlay = _OVERLAY.match(name)
    if overlay and is_result(path.with_name(overlay['input'] + '.json')):
        return True  # an overlay beside its input's result
    if in_movement_folder(path):  # the movement data beside a result
        return True
    return is_openpose_file(path) or (
        name == OWNER_FILE and path.parent.name.endswith('_json'))

