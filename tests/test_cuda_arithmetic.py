"""Exact mode on CUDA runs IEEE fp32, fast mode may run TF32
(pose_suite.models.cuda_arithmetic), shown on the CPU: TF32 is emulated by
rounding every convolution's input and weight to TF32's 10-bit mantissa
whenever torch's flag says cuDNN would use it, as an Ampere GPU does; a
CUDA device is simulated by making the build take the CPU for one."""
import cv2
import numpy as np
import pytest
import torch
from conftest import COCO_IMAGES, data_file


def to_tf32(values: torch.Tensor) -> torch.Tensor:
    """fp32 values rounded to nearest (ties to even) with a 10-bit mantissa,
    as the tensor cores read them."""
    bits = values.contiguous().view(torch.int32)
    half = 0x0FFF + ((bits >> 13) & 1)
    return ((bits + half) & ~0x1FFF).view(torch.float32).view_as(values)


def emulate_tf32(model: torch.nn.Module) -> int:
    """Round each Conv2d's input and weight to TF32 while
    ``torch.backends.cudnn.conv.fp32_precision`` is ``'tf32'`` (read at each
    call, as cuDNN does). Returns how many convolutions were changed."""
    convolutions = [m for m in model.modules()
                    if isinstance(m, torch.nn.Conv2d)]
    for conv in convolutions:
        plain = conv._conv_forward

        def convolve(inputs, weight, bias, plain=plain):
            if torch.backends.cudnn.conv.fp32_precision == 'tf32' and \
                    inputs.dtype == torch.float32:
                inputs, weight = to_tf32(inputs), to_tf32(weight)
            return plain(inputs, weight, bias)

        conv._conv_forward = convolve
    return len(convolutions)


def test_tf32_rounding_matches_torch_bits():
    values = torch.tensor([1.0, 1 + 2 ** -10, 1 + 2 ** -11, 1 + 3 * 2 ** -11,
                           -3.14159265, 1e-30])
    rounded = to_tf32(values)
    assert rounded[:4].tolist() == [1.0, 1 + 2 ** -10, 1.0, 1 + 2 ** -9]
    assert (rounded.view(torch.int32) & 0x1FFF).eq(0).all()
    assert torch.allclose(rounded, values, rtol=2 ** -11, atol=0)


@pytest.fixture
def simulated_cuda(monkeypatch):
    """Models built next take the CPU for a CUDA device; torch's flags as
    torch 2.13 starts (TF32 convolutions) and put back after."""
    from pose_suite.models import build
    from pose_suite.models.cuda_arithmetic import CudaArithmetic, running_with
    monkeypatch.setattr(build, 'runs_on_cuda', lambda device: True,
                        raising=False)
    with running_with(CudaArithmetic('tf32', None, False, False)):
        yield


def keypoints(pose, frames_and_boxes):
    return [person['keypoints'] for frame, boxes in frames_and_boxes
            for person in pose.extract(frame, boxes)]


@pytest.fixture(scope='module')
def frames_and_boxes(real_detector):
    detector = real_detector
    frames = [cv2.imread(str(data_file(image))) for image in COCO_IMAGES]
    return [(frame, detector.detect(frame)) for frame in frames]


def largest_shift(reference, other):
    return max(float(np.abs(a - b).max()) for a, b in zip(reference, other))


def test_exact_mode_on_cuda_is_ieee_and_tf32_would_move_keypoints(
        simulated_cuda, real_model_files, real_pose_service,
        frames_and_boxes):
    """The pose model built for (simulated) CUDA in exact mode gives the
    CPU's keypoints under emulated TF32 hardware; the same model run with
    torch's default TF32 flag moves some by more than the gpu tests' 1 px,
    so the setting matters."""
    from pose_extraction_service import PoseExtractionService

    from pose_suite.models.cuda_arithmetic import CudaArithmetic, running_with
    model_files, pose_service = real_model_files, real_pose_service
    pose = PoseExtractionService(model_files['pose_config'],
                                 model_files['pose_checkpoint'],
                                 device='cpu')
    assert pose.loaded.cuda_arithmetic == CudaArithmetic(
        'ieee', None, False, True)
    assert emulate_tf32(pose.model) > 100
    reference = keypoints(pose_service, frames_and_boxes)
    assert largest_shift(reference,
                         keypoints(pose, frames_and_boxes)) == 0.0
    # torch's defaults left alone (the fault): the emulated TF32 moves them.
    pose.model.test_step = pose.model.test_step.__wrapped__
    with running_with(CudaArithmetic('tf32', None, False, False)):
        tf32 = keypoints(pose, frames_and_boxes)
    assert largest_shift(reference, tf32) > 1.0


def test_fast_mode_on_cuda_allows_tf32_and_benchmark(simulated_cuda,
                                                     model_files):
    from pose_extraction_service import PoseExtractionService
    seen = []
    pose = PoseExtractionService(model_files['pose_config'],
                                 model_files['pose_checkpoint'],
                                 device='cpu', fast=True)
    assert pose.loaded.cuda_arithmetic.as_meta() == {
        'fp32': 'tf32', 'autocast': None, 'cudnn_benchmark': True,
        'cudnn_deterministic': False}
    step = pose.model.test_step.__wrapped__

    def spy(*args, **kwargs):
        seen.append((torch.backends.cudnn.conv.fp32_precision,
                     torch.backends.cudnn.benchmark))
        return step(*args, **kwargs)

    from pose_suite.models.cuda_arithmetic import run_model_with
    pose.model.test_step = spy
    run_model_with(pose.model, pose.loaded.cuda_arithmetic)
    pose.extract(np.zeros((64, 48, 3), np.uint8),
                 np.array([[0, 0, 48, 64, 1]], np.float32))
    assert seen == [('tf32', True)]


def test_exact_model_stays_ieee_next_to_a_fast_one(simulated_cuda):
    """The flags are process-wide: each model's calls set its own, and put
    the previous ones back, so building a fast model after an exact one
    does not turn the exact one to TF32 (nor leave cudnn.benchmark on)."""
    from pose_suite.models.cuda_arithmetic import (cuda_arithmetic,
                                                   run_model_with)
    seen = []

    class Model(torch.nn.Module):
        def test_step(self, data):
            seen.append((torch.backends.cudnn.conv.fp32_precision,
                         torch.backends.cuda.matmul.fp32_precision,
                         torch.backends.cudnn.benchmark,
                         torch.backends.cudnn.deterministic))

    exact, fast = Model(), Model()
    run_model_with(exact, cuda_arithmetic('fp32', False))
    run_model_with(fast, cuda_arithmetic('fp16', True))
    exact.test_step({}), fast.test_step({}), exact.test_step({})
    assert seen == [('ieee', 'ieee', False, True), ('tf32', 'tf32', True,
                                                    False),
                    ('ieee', 'ieee', False, True)]
    assert torch.backends.cudnn.conv.fp32_precision == 'tf32'  # put back
    assert torch.backends.cudnn.benchmark is False


def test_cpu_models_are_left_alone_and_meta_says_none(detector,
                                                      pose_service):
    assert detector.loaded.cuda_arithmetic is None
    assert pose_service.loaded.cuda_arithmetic is None
    assert not hasattr(detector.model.test_step, '__wrapped__')
