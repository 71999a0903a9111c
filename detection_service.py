"""DetectionService: person boxes in one BGR frame, with RTMDet (MMDetection).

Example::

    from detection_service import DetectionService
    det = DetectionService('config_files/rtmdet_m_640-8xb32_coco-person.py',
                           'config_files/rtmdet_m_8xb32-100e_coco-obj365-'
                           'person-235e8209.pth', device='cpu')
    boxes = det.detect(cv2.imread('data/000000000785.jpg'))  # (N, 5)
"""
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import torch

from pose_suite.models.runtime import ensure_torchvision

ensure_torchvision()  # before mmpose (its nms is used below)

from mmdet.apis import inference_detector, init_detector  # noqa: E402
from mmdet.utils import get_test_pipeline_cfg  # noqa: E402
from mmengine.dataset import Compose, pseudo_collate  # noqa: E402
from mmpose.evaluation.functional import nms  # noqa: E402
from mmpose.utils import adapt_mmdet_pipeline  # noqa: E402

from pose_suite.models.build import build_model  # noqa: E402
from pose_suite.models.device_ops import (choose_nms,  # noqa: E402
                                          to_device_once)

PathLike = Union[str, Path]


class DetectionService:
    """Detect persons with an MMDetection model.

    The result is what mmpose's ``topdown_demo_with_mmdet.py`` computes
    (``inference_detector``, keep class ``det_cat_id`` with score above
    ``bbox_thr``, then NMS at ``nms_thr``), except that the detector's score
    is kept with each box.

    Args:
        det_config: MMDetection config file (.py).
        det_checkpoint: weights (.pth), verified and loaded safely.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        bbox_thr: keep boxes whose score is above this.
        nms_thr: IoU above which the lower-scored of two boxes is dropped.
        det_cat_id: class index of "person" in the detector's classes.
        precision, fast, runtime: the arithmetic, fast mode and (fast mode
            on a CPU) the runtime of the heavy part, as given (see
            ``pose_suite.models.build.build_model``).
    """

    def __init__(self, det_config: PathLike, det_checkpoint: PathLike,
                 device: str = 'cpu', bbox_thr: float = 0.3,
                 nms_thr: float = 0.3, det_cat_id: int = 0,
                 precision: str = 'fp32', fast: Optional[bool] = None,
                 runtime: str = 'auto'):
        self.loaded = build_model(init_detector, det_config, det_checkpoint,
                                  device, precision, fast, runtime)
        self.model = self.loaded.model
        self.device = self.loaded.device
        self.bbox_thr = bbox_thr
        self.nms_thr = nms_thr
        self.det_cat_id = det_cat_id
        meta = self.loaded.checkpoint_meta
        if 'dataset_meta' in meta:  # as init_detector does with a checkpoint
            self.model.dataset_meta.update(
                {k.lower(): v for k, v in meta['dataset_meta'].items()})
        else:
            classes = self.model.cfg.test_dataloader.dataset.get(
                'metainfo', {}).get('classes')
            if classes:
                self.model.dataset_meta['classes'] = tuple(classes)
        # As mmpose's demo does: name the transforms mmdet.X so the pipeline
        # builds whatever scope (mmdet or mmpose) is current.
        self.model.cfg = adapt_mmdet_pipeline(self.model.cfg)
        pipeline = get_test_pipeline_cfg(self.model.cfg.copy())
        pipeline[0].type = 'mmdet.LoadImageFromNDArray'  # frames are arrays
        self._pipeline = Compose(pipeline)
        #: Where the head's NMS runs: mmcv's on the device, or on the CPU
        #: where mmcv was built without ops for it (pose_suite.models.device_ops).
        self.nms = choose_nms(self.model, self.device)
        self.warm_up()

    def warm_up(self) -> None:
        """One forward pass on a blank frame, when the model is built.

        On CPUs with AMX (Intel Xeon, 4th generation on) the first forward
        pass of a process gave boxes 0.001-0.002 px apart in about one
        process in three, and later passes did not; passing first here
        keeps that out of every result, so that two runs of the same input
        write the same file. The frame's size does not matter: the test
        pipeline pads every frame to one input size.
        """
        self.detect(np.zeros((64, 64, 3), np.uint8))

    def detect(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Find the persons in one frame.

        Args:
            frame_bgr: (H, W, 3) uint8 image in BGR order.

        Returns:
            float32 array (N, 5): x1, y1, x2, y2 in image pixels and the
            detector's score, sorted by decreasing score; (0, 5) when nobody
            is found.
        """
        with torch.inference_mode():
            result = inference_detector(self.model, frame_bgr,
                                        test_pipeline=self._pipeline)
        return self._person_boxes(result)

    def detect_batch(self, frames_bgr: List[np.ndarray]) -> List[np.ndarray]:
        """``detect`` for several frames in one forward pass (the GPU path).

        Args:
            frames_bgr: (H, W, 3) uint8 BGR frames of the same size.

        Returns:
            One (N_i, 5) array per frame, as ``detect`` returns.
        """
        batch = to_device_once(pseudo_collate(
            [self._pipeline(dict(img=frame, img_id=0))
             for frame in frames_bgr]), self.device)
        with torch.inference_mode():
            results = self.model.test_step(batch)
        return [self._person_boxes(result) for result in results]

    def _person_boxes(self, result) -> np.ndarray:
        """Class ``det_cat_id`` above ``bbox_thr``, after NMS: (N, 5)."""
        instances = result.pred_instances.cpu().numpy()
        boxes = np.concatenate(
            (instances.bboxes, instances.scores[:, None]), axis=1)
        keep = np.logical_and(instances.labels == self.det_cat_id,
                              instances.scores > self.bbox_thr)
        boxes = boxes[keep]
        if len(boxes):
            boxes = boxes[nms(boxes, self.nms_thr)]
        return boxes.astype(np.float32).reshape(-1, 5)
