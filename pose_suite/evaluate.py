"""Score results against COCO-WholeBody annotations with mmpose's own
metric.

    python -m pose_suite.evaluate ANNOTATIONS.json RESULTS.json [...]

Each RESULTS.json is this suite's output for one image; the file name in its
``meta.source`` is matched to the annotations' ``file_name``. The persons
go through mmpose's ``CocoWholeBodyMetric`` as a top-down model's
predictions would: each person scored as the box score times the mean of
its keypoint scores above 0.2, OKS-NMS at 0.9 per image, the instance area
that of the padded, aspect-fixed box the model saw. Prints average
precision and recall (OKS, xtcocotools' COCOeval with the COCO-WholeBody
sigmas) for body, foot, face, left hand, right hand and the whole body, as
the metric computes them (it returns the whole-body numbers and prints the
parts; this module runs the same six evaluations on the metric's output).
"""
import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

import numpy as np

from pose_suite.errors import (InputError, SuiteError,
                               show_warnings_as_one_line, visible)

#: (name used by COCOeval, key in a COCO-WholeBody annotation, keypoints)
PARTS = (('body', 'keypoints', 17), ('foot', 'foot_kpts', 6),
         ('face', 'face_kpts', 68), ('lefthand', 'lefthand_kpts', 21),
         ('righthand', 'righthand_kpts', 21))
#: The pose model's input (width, height): mmpose's area of an instance is
#: that of its box padded 1.25x and fixed to this aspect ratio.
INPUT_SIZE = (288, 384)


def wholebody_meta() -> dict:
    """mmpose's COCO-WholeBody dataset meta (sigmas, keypoint names...)."""
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    return parse_pose_metainfo(dict(
        from_file='configs/_base_/datasets/coco_wholebody.py'))


def data_samples(results_paths: List[Path], file_to_image_id: Dict[str, int]
                 ) -> List[dict]:
    """The persons of the results files as the data samples a top-down
    model hands to mmpose's metrics (one person each)."""
    from mmpose.datasets.transforms import TopdownAffine
    from mmpose.structures.bbox import bbox_xyxy2cs
    samples = []
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
            _, scale = bbox_xyxy2cs(np.asarray(person['bbox'], np.float32),
                                    padding=1.25)
            scale = TopdownAffine._fix_aspect_ratio(
                scale, aspect_ratio=INPUT_SIZE[0] / INPUT_SIZE[1])
            samples.append({
                'id': len(samples), 'img_id': file_to_image_id[name],
                'category_id': 1,
                'pred_instances': {
                    'keypoints': np.asarray([person['keypoints']],
                                            np.float32),
                    'keypoint_scores': np.asarray(
                        [person['keypoint_scores']], np.float32),
                    'bbox_scores': np.asarray([person['bbox_score']],
                                              np.float32)},
                'gt_instances': {'bbox_scales': scale[None]}})
    return samples


def evaluate(annotations: Path, results_paths: List[Path]) -> Dict[str, dict]:
    """AP and AR per part: ``{'body': {'AP': ..., 'AR': ...}, ...,
    'wholebody': {...}}``; -1 where the annotations have none of a part."""
    from mmpose.evaluation.metrics import CocoWholeBodyMetric
    from xtcocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()), \
            tempfile.TemporaryDirectory() as folder:
        metric = CocoWholeBodyMetric(ann_file=str(annotations),
                                     format_only=True,
                                     outfile_prefix=f'{folder}/results')
        metric.dataset_meta = wholebody_meta()
        file_to_image_id = {image['file_name']: image_id
                            for image_id, image in metric.coco.imgs.items()}
        samples = data_samples(results_paths, file_to_image_id)
        if not samples:
            raise InputError('the results hold no person to evaluate')
        metric.process([], samples)
        # Scoring and OKS-NMS as mmpose does, written as its results file.
        metric.compute_metrics(metric.results)
        found = metric.coco.loadRes(f'{folder}/results.keypoints.json')
        sigmas = metric.dataset_meta['sigmas']
        cuts = np.cumsum([0] + [count for _, _, count in PARTS])
        parts = [(name, sigmas[cuts[i]:cuts[i + 1]])
                 for i, (name, _, _) in enumerate(PARTS)]
        scores = {}
        for name, part_sigmas in parts + [('wholebody', sigmas)]:
            evaluation = COCOeval(metric.coco, found, f'keypoints_{name}',
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
    show_warnings_as_one_line()
    if not args.annotations.is_file():
        print(f'error: annotations not found: {visible(args.annotations)}',
              file=sys.stderr)
        return 1
    try:
        scores = evaluate(args.annotations, args.results)
    except SuiteError as exc:
        print(f'error: {visible(exc)}', file=sys.stderr)
        return 1
    print(f'{"part":<10} {"AP":>6} {"AR":>6}')
    for name, values in scores.items():
        print(f'{name:<10} {values["AP"]:6.3f} {values["AR"]:6.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
