"""Sports2D's and Pose2Sim's own angle code, run on our keypoints.

``Sports2D.process`` imports its whole video and GUI stack when imported
(rtmlib, PyAV, lxml, openvino through Pose2Sim's pose estimation...), none
of which the angles use. So its two angle functions, ``compute_angle`` and
``compute_angles_for_person``, are taken verbatim from the installed
``Sports2D/process.py`` (``make test`` installs ``sports2d`` with
``--no-deps``) and run in the namespace that file's ``from Pose2Sim.common
import *`` gives them (Pose2Sim's ``angle_dict``, ``fixed_angles``,
``points_to_angles``), which is what Sports2D runs.
:func:`process_functions` takes others the same way (its .trc and .mot
writers, for ``test_opensim_files``).

Our point names are mapped to Sports2D's by name: Sports2D's ``RBigToe`` is
``right_big_toe``, ``LHeel`` ``left_heel``..., its ``RIndex`` (the index
finger of its whole-body skeleton) ``right_forefinger1``.
"""
import ast
import importlib.util
import re
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import Pose2Sim.common as pose2sim_common

#: Sports2D's order of angles (Pose2Sim's ``angle_dict``).
ANGLE_NAMES = list(pose2sim_common.angle_dict)
#: Sports2D's points our model has, with the names Sports2D gives them.
SPORTS2D_POINTS = sorted({point for points, *_ in
                          pose2sim_common.angle_dict.values()
                          for point in points} - {'Hip', 'Neck', 'Head'})


def process_functions(names: Sequence[str], namespace: dict) -> dict:
    """The functions ``names`` of the installed ``Sports2D/process.py``,
    verbatim, defined in ``namespace`` (what they use of that file's
    imports); returns ``namespace``."""
    spec = importlib.util.find_spec('Sports2D')
    source_path = Path(spec.submodule_search_locations[0]) / 'process.py'
    tree = ast.parse(source_path.read_text(encoding='utf-8'))
    wanted = [node for node in tree.body if isinstance(node, ast.FunctionDef)
              and node.name in names]
    assert len(wanted) == len(names), \
        f'{source_path} has not all of {names}'
    exec(compile(ast.Module(body=wanted, type_ignores=[]), str(source_path),
                 'exec'), namespace)
    return namespace


def _functions() -> dict:
    return process_functions(
        ('compute_angle', 'compute_angles_for_person'),
        {name: getattr(pose2sim_common, name)
         for name in dir(pose2sim_common) if not name.startswith('_')})


FUNCTIONS = _functions()


def our_name(sports2d_name: str) -> str:
    """``RBigToe`` -> ``right_big_toe``, ``RIndex`` -> ``right_forefinger1``
    (COCO-WholeBody's name of the index finger's first joint)."""
    side = {'R': 'right', 'L': 'left'}[sports2d_name[0]]
    words = re.findall('[A-Z][a-z]*', sports2d_name[1:])
    name = '_'.join(word.lower() for word in words)
    return f'{side}_{ {"index": "forefinger1"}.get(name, name) }'


def sports2d_angles(keypoints: np.ndarray, scores: np.ndarray,
                    keypoint_names: Sequence[str], kpt_thr: float,
                    visible_side: str = 'auto') -> List[Dict[str, float]]:
    """Sports2D's angles (NaN where it gives none) of each person, as its
    ``process_fun`` computes them for one frame.

    Args:
        keypoints: (N, K, 2) in our model's order; scores (N, K).
    """
    ids = [list(keypoint_names).index(our_name(name))
           for name in SPORTS2D_POINTS]
    names = list(SPORTS2D_POINTS)
    out = []
    for person_keypoints, person_scores in zip(keypoints, scores):
        person_keypoints = np.asarray(person_keypoints, np.float64)[ids]
        person_scores = np.asarray(person_scores, np.float64)[ids]
        # Sports2D's own lines (process_fun): low scores become NaN.
        person_X, person_Y = np.where(
            person_scores[:, np.newaxis] < kpt_thr, np.nan,
            person_keypoints).T
        person_scores = np.where(person_scores < kpt_thr, np.nan,
                                 person_scores)
        new_names, new_ids = names.copy(), list(range(len(names)))
        for kpt in ['RShoulder', 'LShoulder', 'Hip', 'Neck']:
            if kpt not in new_names:
                person_X, person_Y, person_scores = \
                    pose2sim_common.add_shoulder_neck_hip_coords(
                        kpt, person_X, person_Y, person_scores, new_ids,
                        new_names)
                new_names.append(kpt)
                new_ids.append(len(person_X) - 1)
        direction = [new_ids[new_names.index(k)]
                     for k in ('LBigToe', 'LHeel', 'RBigToe', 'RHeel')]
        _, angles, _ = FUNCTIONS['compute_angles_for_person'](
            person_X, person_Y, visible_side, True, new_ids, new_names,
            ANGLE_NAMES, pose2sim_common.angle_dict,
            L_R_direction_idx=direction)
        out.append(dict(zip(ANGLE_NAMES, angles)))
    return out
