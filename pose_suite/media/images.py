"""Decoding an image upright: OpenCV's decoders, the EXIF orientation
applied for every format, and what the C decoders print turned into one
warning."""
import contextlib
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Iterator, List, Tuple

import cv2
import numpy as np

from pose_suite.errors import InputError, SuiteWarning, opencv_name

#: EXIF Orientation value -> (clockwise rotation in degrees, mirrored), and
#: the OpenCV operations that turn the stored pixels upright.
EXIF_ORIENTATIONS = {
    1: (0, False, ()),
    2: (0, True, ((cv2.flip, 1),)),
    3: (180, False, ((cv2.rotate, cv2.ROTATE_180),)),
    4: (180, True, ((cv2.flip, 0),)),
    5: (270, True, ((cv2.transpose, None),)),
    6: (90, False, ((cv2.rotate, cv2.ROTATE_90_CLOCKWISE),)),
    7: (90, True, ((cv2.transpose, None), (cv2.rotate, cv2.ROTATE_180))),
    8: (270, False, ((cv2.rotate, cv2.ROTATE_90_COUNTERCLOCKWISE),)),
}


def read_image(path: Path) -> Tuple[np.ndarray, int, bool]:
    """Decode an image upright: (H, W, 3) uint8 BGR as displayed, and the
    EXIF rotation (clockwise degrees) and mirroring applied.

    IMREAD_COLOR makes every image 8-bit, 3-channel BGR: grayscale is
    replicated, alpha dropped, 16-bit scaled down. OpenCV applies EXIF
    orientation itself for some formats only (JPEG, PNG, not WebP), so it
    is told not to, and the suite applies it for all.
    """
    with native_stderr_captured() as printed:
        image = cv2.imread(opencv_name(path), cv2.IMREAD_COLOR |
                           cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise InputError(f'image cannot be decoded (corrupt or truncated): '
                         f'{path}')
    # libpng warns about metadata it ignores (iCCP profiles, sRGB chunks);
    # anything else a decoder prints (libjpeg's "Corrupt JPEG data...")
    # means damaged pixels: one warning line instead of the library's.
    damage = [line for line in printed if line.strip()
              and not line.startswith('libpng warning:')]
    if damage:
        warnings.warn(f'{path}: the image decoder reported "{damage[0]}"; '
                      'the picture may be damaged', SuiteWarning)
    rotation, mirrored, operations = EXIF_ORIENTATIONS[_exif_orientation(
        path)]
    for operation, argument in operations:
        image = operation(image) if argument is None \
            else operation(image, argument)
    return image, rotation, mirrored


def _exif_orientation(path: Path) -> int:
    """The EXIF Orientation tag (1 to 8) of an image; 1 when it has none."""
    from PIL import Image  # Pillow: installed with mmcv
    try:
        with Image.open(path) as image:
            value = image.getexif().get(0x0112, 1)
    except Exception:  # a format or EXIF block Pillow cannot read
        return 1
    return value if value in EXIF_ORIENTATIONS else 1


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[List[str]]:
    """Collect what C libraries print on file descriptor 2 (libpng,
    libjpeg) while the block runs; yields the list, filled on exit."""
    printed: List[str] = []
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield printed
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            printed.extend(sink.read().decode('utf-8', 'replace')
                           .splitlines())
