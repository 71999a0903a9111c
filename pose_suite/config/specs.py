"""What the ``input``, ``output`` and ``visualize_output`` values name.

An ``input`` is a camera index (``0``), a stream URL, a glob pattern or a
path; each input's result is ``<input file name>.json`` in the output
folder (a camera ``camera<N>.json``, a URL ``stream-<host and path>.json``),
or ``output`` itself when that is one ``.json`` file for one input. An
overlay name is an image, an ``.mp4`` or a folder. These rules are the
config's, read by the config edge, the input search
(:mod:`pose_suite.media.inputs`) and the outputs alike, so they sit below
all three.
"""
import re
from pathlib import Path
from typing import Optional, Sequence, Union

from pose_suite.errors import ConfigError, OutputError

Source = Union[Path, str]  # str: a camera index or stream URL
STREAM_SCHEMES = ('rtsp://', 'rtmp://', 'http://', 'https://', 'udp://',
                  'tcp://')
#: Overlay names: an image overlay for an image input, an mp4 for a video
#: or a live source. A name without a suffix is a folder of overlays.
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
VIDEO_SUFFIXES = ('.mp4',)


def is_stream(spec: str) -> bool:
    """A camera index (``0``) or a stream URL."""
    return str(spec).isdigit() or str(spec).startswith(STREAM_SCHEMES)


def has_glob(spec: str) -> bool:
    return any(character in str(spec) for character in '*?[')


def output_name(source: Source, base: Optional[Path] = None) -> Path:
    """The result file of ``source``, relative to the output folder."""
    text = str(source)
    if text.isdigit():
        return Path(f'camera{text}.json')
    if is_stream(text):
        slug = re.sub(r'[^A-Za-z0-9._-]+', '_', text.split('://', 1)[1])
        return Path(f'stream-{slug.strip("_.")[:150]}.json')
    path = Path(source)
    if base is not None and path.is_relative_to(base):
        path = path.relative_to(base)
    else:
        path = Path(path.name)
    return path.with_name(path.name + '.json')


def is_json_file(output: Path) -> bool:
    """``output`` names one result file rather than a folder of them."""
    return output.suffix.lower() == '.json' and not output.is_dir()


def check_distinct(sources: Sequence[Source], paths: Sequence[Path],
                   what: str) -> None:
    """Refuse two sources that would write the same path (``what``: the
    kind of file, for the message); compared without case, which some
    filesystems ignore.

    Raises:
        OutputError: naming both sources and the path.
    """
    first_of = {}
    for source, path in zip(sources, paths):
        other = first_of.setdefault(str(path).casefold(), source)
        if other is not source:
            raise OutputError(f'inputs {other} and {source} would both '
                              f'write their {what} to {path}; rename one')


def check_overlay_name(path, inputs: int = 1) -> None:
    """Refuse an overlay name OpenCV cannot write (at the config edge), or
    one file name for several inputs.

    Raises:
        ConfigError: naming ``visualize_output`` and what is allowed.
    """
    suffix = Path(path).suffix.lower()
    if suffix and inputs > 1:
        raise ConfigError(f'visualize_output {path} is one file for {inputs} '
                          'inputs: give a folder instead')
    if suffix and suffix not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
        raise ConfigError(
            f'visualize_output {path}: use an image name '
            f'({", ".join(IMAGE_SUFFIXES)}) for an image, an .mp4 for a '
            'video or stream, or a folder (no suffix) for several inputs')
