"""A complete result's derived fields made again without the models.

``angles`` and, where it decides nothing else, ``kpt_thr`` only change
what is computed from the keypoints the models gave: each person's
``angles`` (from the keypoints as written, points below ``kpt_thr``
missing) and ``meta.angles`` / ``meta.thresholds.kpt_thr``. When a run
finds a complete result made by the same models and model settings
(``meta.model_key``), it rewrites those fields here, keeping every
keypoint, box and score as the models gave them, instead of analysing the
input again. The result gets a new ``result_id`` (its exports are made
again from it).
"""
from pathlib import Path
from typing import Optional

from pose_suite.outputs.angles import AngleComputer
from pose_suite.outputs.publish import atomic_write
from pose_suite.outputs.results import (iter_frame_records, record_angles,
                                        record_line, write_result)


def rederive(output_file: Path, meta: dict,
             angles: Optional[AngleComputer], kpt_thr: float,
             new_keys: dict, result_id: str) -> dict:
    """Rewrite the result ``output_file`` (its ``meta`` given) with each
    person's angles from ``angles`` (None: none) and ``kpt_thr``; returns
    the new meta (``new_keys``: its ``resume_key`` and
    ``settings_sha256``).

    Raises:
        OSError: the folder cannot be written; the result is untouched.
    """
    meta = dict(meta, **new_keys)
    meta['thresholds'] = dict(meta['thresholds'], kpt_thr=kpt_thr)
    meta.pop('angles', None)
    if angles is not None:
        meta['angles'] = angles.names
    meta['run'] = dict(meta['run'], result_id=result_id,
                       rederived_without_models=True)

    def lines():
        for record in iter_frame_records(output_file):
            for person in record['persons']:
                person.pop('angles', None)
                if angles is not None:
                    person['angles'] = record_angles(
                        angles, person['keypoints'],
                        person['keypoint_scores'])
            yield record_line(record)
    with atomic_write(output_file, encoding='utf-8') as handle:
        write_result(handle, meta, lines())
    return meta
