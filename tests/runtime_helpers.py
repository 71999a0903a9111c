"""What the runtime tests share (their fixtures, ``own_cache`` and
``own_models``, are in conftest.py): services built with a runtime, real
photos, and a probe whose ratios the test gives."""
import cv2
from conftest import COCO_IMAGES, data_file

from pose_suite.runtimes import seam


RUNTIMES = ['openvino', 'onnxruntime']


def build(files, runtime, precision='fp32', fast=True):
    from detection_service import DetectionService
    from pose_extraction_service import PoseExtractionService
    detector = DetectionService(files['det_config'], files['det_checkpoint'],
                                bbox_thr=0.0, nms_thr=0.3,
                                precision=precision, fast=fast,
                                runtime=runtime)
    pose = PoseExtractionService(files['pose_config'],
                                 files['pose_checkpoint'],
                                 precision=precision, fast=fast,
                                 runtime=runtime)
    return detector, pose


def frames():
    return [cv2.imread(str(data_file(image))) for image in COCO_IMAGES[:2]]


def measured_as(monkeypatch, ratios):
    calls = []

    def ratios_of(pytorch, engines, batch):
        calls.append(sorted(engines))
        return {name: ratios[name] for name in engines}

    monkeypatch.setattr(seam, 'speed_ratios', ratios_of)
    return calls


