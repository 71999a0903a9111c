"""Writing the results JSON: streamed, and visible only when complete.

Frames are appended, one JSON line each, to a temporary file beside the
output as they are computed, so memory does not grow with video length.
:meth:`ResultWriter.commit` then writes ``{"meta": ..., "frames": [...]}``
to a second temporary file, fsyncs it and renames it over the output path:
a failed or interrupted run never leaves a half-written file there and
never replaces an earlier good result.
"""
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from pose_suite.errors import OutputError

#: Decimals kept in the JSON: 0.001 px for positions, 1e-5 for scores.
PIXEL_DECIMALS = 3
SCORE_DECIMALS = 5


def _number(value, decimals: int) -> Optional[float]:
    value = float(value)
    return round(value, decimals) if math.isfinite(value) else None


def person_record(person: Dict[str, np.ndarray]) -> dict:
    """JSON-ready record of one person from ``PoseExtractionService``."""
    return {
        'bbox': [_number(v, PIXEL_DECIMALS) for v in person['bbox'][:4]],
        'bbox_score': _number(person['bbox_score'], SCORE_DECIMALS),
        'keypoints': [[_number(x, PIXEL_DECIMALS), _number(y, PIXEL_DECIMALS)]
                      for x, y in np.asarray(person['keypoints'])],
        'keypoint_scores': [_number(s, SCORE_DECIMALS)
                            for s in np.asarray(person['keypoint_scores'])],
    }


def frame_record(frame_index: int, timestamp_s: float,
                 persons: List[Dict[str, np.ndarray]]) -> dict:
    """JSON-ready record of one frame (``persons`` may be empty)."""
    return {
        'frame_index': int(frame_index),
        'timestamp_s': round(float(timestamp_s), 6),
        'persons': [person_record(p) for p in persons],
    }


class ResultWriter:
    """Stream frame records to disk, then publish the output atomically.

    Use as a context manager: leaving it with an exception (or without
    :meth:`commit`) removes the temporary files and leaves the output path
    as it was.

    Raises:
        OutputError: the output folder cannot be created or written.
    """

    def __init__(self, output_path: Path):
        self.output_path = Path(output_path)
        self.frame_count = 0
        self.person_count = 0
        self._committed = False
        folder = self.output_path.parent
        if self.output_path.is_dir():
            raise OutputError(f'output path is a folder: {self.output_path}')
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._frames = tempfile.NamedTemporaryFile(
                'w', encoding='utf-8', dir=folder, delete=False,
                prefix=f'.{self.output_path.name}.', suffix='.frames.tmp')
        except OSError as exc:
            raise OutputError(f'cannot write to output folder {folder}: '
                              f'{exc.strerror or exc}') from None

    def write_frame(self, frame_index: int, timestamp_s: float,
                    persons: List[Dict[str, np.ndarray]]) -> None:
        """Append one frame's record (frames must come in order)."""
        record = frame_record(frame_index, timestamp_s, persons)
        self._frames.write(json.dumps(record, separators=(',', ':'),
                                      allow_nan=False) + '\n')
        self.frame_count += 1
        self.person_count += len(persons)

    def commit(self, meta: dict) -> Path:
        """Write ``{"meta": meta, "frames": [...]}`` and rename it into
        place. Returns the output path."""
        self._frames.close()
        folder = self.output_path.parent
        try:
            with tempfile.NamedTemporaryFile(
                    'w', encoding='utf-8', dir=folder, delete=False,
                    prefix=f'.{self.output_path.name}.',
                    suffix='.tmp') as final, \
                    open(self._frames.name, encoding='utf-8') as frames:
                self._final_name = final.name
                final.write('{\n"meta": ')
                final.write(json.dumps(meta, indent=2, ensure_ascii=False,
                                       allow_nan=False))
                final.write(',\n"frames": [')
                separator = '\n'
                for line in frames:
                    final.write(separator + line.rstrip('\n'))
                    separator = ',\n'
                final.write('\n]\n}\n')
                final.flush()
                os.fsync(final.fileno())
            os.replace(self._final_name, self.output_path)
            _fsync_folder(folder)
        except OSError as exc:
            raise OutputError(f'cannot write {self.output_path}: '
                              f'{exc.strerror or exc}') from None
        finally:
            self._remove_temporaries()
        self._committed = True
        return self.output_path

    def _remove_temporaries(self) -> None:
        self._frames.close()
        for name in (self._frames.name, getattr(self, '_final_name', None)):
            if name and os.path.exists(name):
                os.unlink(name)

    def __enter__(self) -> 'ResultWriter':
        return self

    def __exit__(self, *exc_info) -> None:
        if not self._committed:
            self._remove_temporaries()


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; not every filesystem allows it.
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
