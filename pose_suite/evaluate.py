"""Score results against COCO-WholeBody annotations, as mmpose does.

    python -m pose_suite.evaluate ANNOTATIONS.json RESULTS.json [...]

Each RESULTS.json is this suite's output for one image; the file name in its
``meta.source`` is matched to the annotations' ``file_name``. Prints the
average precision and recall (OKS, xtcocotools' COCOeval with the
COCO-WholeBody sigmas) for body, foot, face, left hand, right hand and the
whole body: the numbers mmpose's ``CocoWholeBodyMetric`` reports.
"""
import argparse
import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np

from pose_suite.errors import InputError, SuiteError

#: (name used by COCOeval, key in a COCO-WholeBody annotation, keypoints)
PARTS = (('body', 'keypoints', 17), ('foot', 'foot_kpts', 6),
         ('face', 'face_kpts', 68), ('lefthand', 'lefthand_kpts', 21),
         ('righthand', 'righthand_kpts', 21))


def wholebody_sigmas() -> np.ndarray:
    """The 133 per-keypoint OKS sigmas of mmpose's COCO-WholeBody meta."""
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    return parse_pose_metainfo(dict(
        from_file='configs/_base_/datasets/coco_wholebody.py'))['sigmas']


def detections(results_paths: List[Path], file_to_image_id: Dict[str, int]
               ) -> List[dict]:
    """COCO-WholeBody keypoint results, one per person of each file.

    Each part is scored as mmpose rescores top-down results, ``bbox_score``
    times the mean keypoint score, over that part's keypoints
    (xtcocotools reads ``foot_score``, ``face_score``, ...; ``score`` is the
    body's), so a person whose hands are not visible ranks low for hands.
    """
    found = []
    for path in results_paths:
        try:
            result = json.loads(Path(path).read_text(encoding='utf-8'))
            name = Path(result['meta']['source']).name
            persons = result['frames'][0]['persons']
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise InputError(f'{path} is not a results file of this suite '
                             f'({type(exc).__name__}: {exc})') from None
        if name not in file_to_image_id:
            raise InputError(f'{path}: its source {name} is not an image of '
                             'the annotations')
        for person in persons:
            scores = np.asarray(person['keypoint_scores'], np.float64)
            triplets = np.concatenate(
                [np.asarray(person['keypoints'], np.float64),
                 scores[:, None]], axis=1)
            bbox_score = float(person['bbox_score'])
            detection = {'image_id': file_to_image_id[name],
                         'category_id': 1,
                         'wholebody_score': bbox_score * scores.mean()}
            start = 0
            for part, key, count in PARTS:
                detection[key] = triplets[start:start + count].ravel().tolist()
                score_key = 'score' if part == 'body' else f'{part}_score'
                detection[score_key] = bbox_score * float(
                    scores[start:start + count].mean())
                start += count
            found.append(detection)
    return found


def evaluate(annotations: Path, results_paths: List[Path]) -> Dict[str, dict]:
    """AP and AR per part: ``{'body': {'AP': ..., 'AR': ...}, ...,
    'wholebody': {...}}``; -1 where the annotations have none of a part."""
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # COCO's own printing
        ground_truth = COCO(str(annotations))
    file_to_image_id = {image['file_name']: image_id
                        for image_id, image in ground_truth.imgs.items()}
    found = detections(results_paths, file_to_image_id)
    if not found:
        raise InputError('the results hold no person to evaluate')
    sigmas = wholebody_sigmas()
    cuts = np.cumsum([0] + [count for _, _, count in PARTS])
    scores = {}
    with contextlib.redirect_stdout(io.StringIO()):
        results = ground_truth.loadRes(found)
        parts = [(name, sigmas[cuts[i]:cuts[i + 1]])
                 for i, (name, _, _) in enumerate(PARTS)]
        for name, part_sigmas in parts + [('wholebody', sigmas)]:
            evaluation = COCOeval(ground_truth, results, f'keypoints_{name}',
                                  part_sigmas, use_area=True)
            evaluation.params.useSegm = None
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
            scores[name] = {'AP': float(evaluation.stats[0]),
                            'AR': float(evaluation.stats[5])}
    return scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('annotations', type=Path)
    parser.add_argument('results', type=Path, nargs='+')
    args = parser.parse_args(argv)
    if not args.annotations.is_file():
        print(f'error: annotations not found: {args.annotations}',
              file=sys.stderr)
        return 1
    try:
        scores = evaluate(args.annotations, args.results)
    except SuiteError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(f'{"part":<10} {"AP":>6} {"AR":>6}')
    for name, values in scores.items():
        print(f'{name:<10} {values["AP"]:6.3f} {values["AR"]:6.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
