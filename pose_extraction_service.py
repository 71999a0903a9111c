"""PoseExtractionService: 133 whole-body keypoints per person box (MMPose).

Example::

    from pose_extraction_service import PoseExtractionService
    pose = PoseExtractionService(
        'config_files/td-hm_hrnet-w48_dark-8xb32-210e_coco-wholebody-384x288.py',
        'config_files/hrnet_w48_coco_wholebody_384x288_dark-f5726563_20200918.pth',
        device='cpu')
    people = pose.extract(frame_bgr, boxes)  # boxes: (N, 5) from detect()
"""
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np

from pose_suite.models.runtime import ensure_torchvision

ensure_torchvision()  # mmpose imports torchvision at import time

import torch  # noqa: E402
from mmengine.dataset import Compose, pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmpose.apis import init_model  # noqa: E402

from pose_suite.models.build import build_model, fast_mode_of  # noqa: E402
from pose_suite.models.device_ops import to_device_once  # noqa: E402

PathLike = Union[str, Path]


class PoseExtractionService:
    """Top-down pose estimation on given person boxes.

    Computes what mmpose's ``inference_topdown`` computes (the model's own
    test pipeline: box to centre/scale, affine crop, flip test, DARK
    decoding), with the pipeline built once and the persons of a frame run
    in batches of ``batch_size``.

    Args:
        pose_config: MMPose config file (.py).
        pose_checkpoint: weights (.pth); mmpose 0.x and 1.x layouts load.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        batch_size: persons per forward pass (bounds memory on crowds).
        precision, fast, runtime: the arithmetic, fast mode and (fast mode
            on a CPU) the runtime of the heavy part, as given (see
            ``pose_suite.models.build.build_model``).
        flip_test: also run each mirrored crop and average the heatmaps
            (twice the model's work); None: as the config's ``test_cfg``.
    """

    def __init__(self, pose_config: PathLike, pose_checkpoint: PathLike,
                 device: str = 'cpu', batch_size: int = 8,
                 precision: str = 'fp32', flip_test: Optional[bool] = None,
                 fast: Optional[bool] = None, runtime: str = 'auto'):
        self.loaded = build_model(init_model, pose_config, pose_checkpoint,
                                  device, precision, fast, runtime)
        self.model = self.loaded.model
        self.device = self.loaded.device
        self.batch_size = batch_size
        meta = self.loaded.checkpoint_meta
        if 'dataset_meta' in meta:  # mmpose 1.x checkpoints, as init_model
            self.model.dataset_meta = meta['dataset_meta']
        if flip_test is not None:  # the model's predict() reads test_cfg
            self.model.test_cfg['flip_test'] = flip_test
        if fast_mode_of(precision, fast):
            _flip_test_in_one_pass(self.model)
        self.flip_test = bool(self.model.test_cfg.get('flip_test', False))
        self._scope = self.model.cfg.get('default_scope', 'mmpose')
        init_default_scope(self._scope)
        self._pipeline = Compose(self.model.cfg.test_dataloader.dataset.pipeline)
        self.warm_up()

    def warm_up(self) -> None:
        """One forward pass (with the flip test, as configured) on one box
        of a blank frame, when the model is built: the first pass of a
        process is not bit-reproducible on CPUs with AMX (see
        ``DetectionService.warm_up``). Every box is cropped to the model's
        one input size."""
        self.extract(np.zeros((64, 48, 3), np.uint8),
                     np.array([[0, 0, 48, 64, 1]], np.float32))

    @property
    def keypoint_names(self) -> List[str]:
        """The K keypoint names, in model output order."""
        id2name = self.model.dataset_meta['keypoint_id2name']
        return [id2name[i] for i in range(len(id2name))]

    @property
    def skeleton_links(self) -> List[List[int]]:
        """Pairs of keypoint indices joined when drawing the skeleton."""
        return [list(map(int, link))
                for link in self.model.dataset_meta.get('skeleton_links', [])]

    def extract(self, frame_bgr: np.ndarray,
                boxes: np.ndarray) -> List[Dict[str, np.ndarray]]:
        """Estimate the pose of each person box.

        Args:
            frame_bgr: (H, W, 3) uint8 image in BGR order.
            boxes: (N, 5) x1, y1, x2, y2, score in image pixels, as returned
                by ``DetectionService.detect``; (N, 4) is taken as score 1;
                one box may be given as (5,) or (4,).

        Returns:
            One dict per box, in the order of ``boxes``:
            ``bbox`` (4,) x1, y1, x2, y2 in pixels; ``bbox_score`` float;
            ``keypoints`` (K, 2) x, y in image pixels; ``keypoint_scores``
            (K,) heatmap maxima, about 0 to 1. An empty list for no boxes
            (mmpose would estimate a pose on the whole image instead).
        """
        boxes = _as_boxes(boxes)
        if len(boxes) == 0:
            return []
        people = []
        for chunk, batch in self._batches(frame_bgr, boxes):
            with torch.inference_mode():
                samples = self.model.test_step(batch)
            for box, sample in zip(boxes[chunk], samples):
                instances = sample.pred_instances
                people.append(dict(
                    bbox=box[:4].copy(),
                    bbox_score=float(box[4]) if len(box) > 4 else 1.0,
                    keypoints=np.asarray(instances.keypoints[0], np.float32),
                    keypoint_scores=np.asarray(instances.keypoint_scores[0],
                                               np.float32)))
        return people

    def heatmaps(self, frame_bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """The model's raw heatmaps for each box, without flip test.

        Returns:
            float32 (N, K, 96, 72) for the 384x288 model; used to measure
            what fast mode changes.
        """
        boxes = _as_boxes(boxes)
        maps = []
        for _, batch in self._batches(frame_bgr, boxes):
            with torch.inference_mode():
                data = self.model.data_preprocessor(batch, training=False)
                features = self.model.extract_feat(data['inputs'])
                maps.append(self.model.head.forward(features).float().cpu())
        return torch.cat(maps).numpy() if maps else np.zeros((0,), np.float32)

    def _batches(self, frame_bgr: np.ndarray, boxes: np.ndarray):
        """Yield ``(slice of boxes, collated batch)`` of at most
        ``batch_size`` crops, through the model's own test pipeline."""
        for start in range(0, len(boxes), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            data_list = []
            for box in boxes[chunk]:
                score = box[4] if len(box) > 4 else 1.0
                data_info = dict(img=frame_bgr, bbox=box[None, :4],
                                 bbox_score=np.array([score], np.float32))
                data_info.update(self.model.dataset_meta)
                data_list.append(self._pipeline(data_info))
            yield chunk, to_device_once(pseudo_collate(data_list),
                                        self.device)


def _flip_test_in_one_pass(model) -> None:
    """Fast mode: each crop and its mirror image go through the backbone as
    one batch of 2N instead of two passes of N (mmpose's
    ``TopdownPoseEstimator.predict``): 11 % less time for the backbone on
    this CPU (measured, N=2), the same arithmetic rounded otherwise."""
    predict = model.predict

    def predict_one_pass(inputs, data_samples):
        if not model.test_cfg.get('flip_test', False):
            return predict(inputs, data_samples)
        both = model.extract_feat(torch.cat([inputs, inputs.flip(-1)]))
        count = len(inputs)
        feats = [tuple(f[:count] for f in both),
                 tuple(f[count:] for f in both)]
        preds = model.head.predict(feats, data_samples,
                                   test_cfg=model.test_cfg)
        instances, fields = preds if isinstance(preds, tuple) else \
            (preds, None)
        return model.add_pred_to_datasample(instances, fields, data_samples)

    model.predict = predict_one_pass


def _as_boxes(boxes) -> np.ndarray:
    """(N, 4) or (N, 5) float32 boxes from one box, (4,) or (5,), or from
    (N, 4) or (N, 5); (0, 5) when empty.

    Raises:
        ValueError: any other shape (a (5,) box must not become five).
    """
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.size == 0:
        return np.zeros((0, 5), np.float32)
    if boxes.ndim == 1:
        boxes = boxes[None]
    if boxes.ndim != 2 or boxes.shape[1] not in (4, 5):
        raise ValueError('boxes must be x1, y1, x2, y2[, score] of shape '
                         f'(4,), (5,), (N, 4) or (N, 5); got '
                         f'{np.shape(boxes)}')
    return boxes
