"""Run mmpose's shipped demo, topdown_demo_with_mmdet.py, unchanged.

Two things are set up first, both needed for it to run at all here: the
torchvision stand-in (mmpose imports torchvision; pose_suite.models.runtime) and
the numpy allow-list for torch.load (torch >= 2.6 loads with
weights_only=True, and OpenMMLab checkpoints keep numpy objects in meta).
Arguments are the demo's own.
"""
import runpy
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pose_suite.models.checkpoints import allowed_globals  # noqa: E402
from pose_suite.models.runtime import ensure_torchvision  # noqa: E402

ensure_torchvision()
torch.serialization.add_safe_globals(allowed_globals())
import mmpose  # noqa: E402

DEMO = Path(mmpose.__file__).parent / '.mim' / 'demo' / \
    'topdown_demo_with_mmdet.py'

if __name__ == '__main__':
    sys.argv[0] = str(DEMO)
    runpy.run_path(str(DEMO), run_name='__main__')
