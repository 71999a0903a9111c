"""Movement data: from a finished result to clean trajectories, angles,
metres and OpenSim files, without the models.

Owns: reading a result's tracks (:mod:`.series`), the chain per track
(:mod:`.chain`: gaps filled (:mod:`.steps`), Hampel, a zero-phase filter
(:mod:`.filters`, :mod:`.smoothers`) on even samples (:mod:`.grid`)),
metres (:mod:`.metres`, :mod:`.scale`), the ``.trc``/``.mot`` files
(:mod:`.opensim_files`) and the movement folder beside each result
(:mod:`.derive`; its files: :mod:`pose_suite.outputs.movement_files`).
May import: :mod:`pose_suite.outputs` (results, angles, atomic writes),
:mod:`pose_suite.config`, :mod:`pose_suite.errors`; never torch, the
models or the media readers, so ``--postprocess`` runs in seconds.
"""
import warnings
from pathlib import Path
from typing import List

from pose_suite.errors import SuiteWarning
from pose_suite.movement.chain import MovementSettings
from pose_suite.movement.derive import FORMATS as MOVEMENT_FORMATS
from pose_suite.movement.derive import derive, is_current, wanted
from pose_suite.outputs.movement_files import remove_stale

__all__ = ['MOVEMENT_FORMATS', 'MovementSettings', 'movement_stale',
           'write_movement']


def movement_stale(output: Path, meta: dict, cfg) -> bool:
    """Whether the result ``output`` (its ``meta``) needs its movement
    folder (re)made for the config ``cfg``."""
    settings = MovementSettings.from_config(cfg)
    return wanted(settings, cfg.export_formats, meta) and not is_current(
        output, meta, settings, cfg.export_formats)


def write_movement(output: Path, meta: dict, cfg,
                   only_stale: bool = False) -> List[str]:
    """Make the movement folder of the result ``output`` when ``cfg`` asks
    for it (``only_stale``: unless it is current); returns
    ``['movement']`` when written, with its warnings said. An image has
    no movement: nothing is made for it. A movement folder made from an
    earlier result and not asked for now is removed.

    Raises:
        MovementError: see :func:`.derive.derive`.
    """
    settings = MovementSettings.from_config(cfg)
    if not wanted(settings, cfg.export_formats, meta):
        remove_stale(output, meta)
        return []
    if only_stale and is_current(output, meta, settings, cfg.export_formats):
        return []
    done = derive(output, meta, settings, cfg.export_formats)
    for line in done.warnings:
        warnings.warn(line, SuiteWarning)
    return ['movement']
