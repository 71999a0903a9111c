"""System (c): a plain loop over mmdet's and mmpose's own inference calls.

    python benchmarks/plain_loop.py DET_CONFIG DET_CKPT POSE_CONFIG POSE_CKPT
        VIDEO OUTPUT_JSON [--bbox-thr T] [--nms-thr T]

Per frame: ``inference_detector``, keep class 0 above ``bbox_thr``, NMS,
``inference_topdown`` on the boxes; the predictions are written at the end
as ``{"frames": [{"frame_index", "persons": [{"bbox", "keypoints",
"keypoint_scores"}]}]}``. This is the reference the other systems' keypoints
are compared with.
"""
import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pose_suite.models.checkpoints import allowed_globals  # noqa: E402
from pose_suite.models.runtime import ensure_torchvision  # noqa: E402

ensure_torchvision()
torch.serialization.add_safe_globals(allowed_globals())

from mmdet.apis import inference_detector, init_detector  # noqa: E402
from mmpose.apis import inference_topdown, init_model  # noqa: E402
from mmpose.evaluation.functional import nms  # noqa: E402
from mmpose.utils import adapt_mmdet_pipeline  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ('det_config', 'det_checkpoint', 'pose_config',
                 'pose_checkpoint', 'video', 'output'):
        parser.add_argument(name)
    parser.add_argument('--bbox-thr', type=float, default=0.3)
    parser.add_argument('--nms-thr', type=float, default=0.3)
    args = parser.parse_args()
    detector = init_detector(args.det_config, args.det_checkpoint,
                             device='cpu')
    detector.cfg = adapt_mmdet_pipeline(detector.cfg)
    pose_model = init_model(args.pose_config, args.pose_checkpoint,
                            device='cpu')
    capture = cv2.VideoCapture(args.video)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        instances = inference_detector(detector, frame).pred_instances
        instances = instances.cpu().numpy()
        boxes = np.concatenate(
            (instances.bboxes, instances.scores[:, None]), axis=1)
        boxes = boxes[np.logical_and(instances.labels == 0,
                                     instances.scores > args.bbox_thr)]
        boxes = boxes[nms(boxes, args.nms_thr)]
        samples = inference_topdown(pose_model, frame, boxes[:, :4]) \
            if len(boxes) else []
        frames.append({'frame_index': len(frames), 'persons': [
            {'bbox': box[:4].tolist(),
             'keypoints': s.pred_instances.keypoints[0].tolist(),
             'keypoint_scores': s.pred_instances.keypoint_scores[0].tolist()}
            for box, s in zip(boxes, samples)]})
    Path(args.output).write_text(json.dumps({'frames': frames}))


if __name__ == '__main__':
    main()
