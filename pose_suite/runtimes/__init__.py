"""A second runtime for the models' heavy part, in fast mode on a CPU.

Owns: the part of each model that a runtime other than PyTorch can run
(backbone, neck and the convolutional head: everything before box decoding,
NMS, flip averaging and DARK decoding, which stay in mmdet's and mmpose's
own code; :mod:`.heavy`), its export to ONNX and the converted files cached
beside the checkpoint (:mod:`.convert`), OpenVINO and ONNX Runtime sessions
(:mod:`.engines`), the once-per-machine measurement that decides which
runtime fast mode uses (:mod:`.choice`, :mod:`.machine`) and the model's
calls routed through it (:mod:`.seam`).
Exact mode (``precision: fp32``) never comes here: it stays PyTorch.
May import: :mod:`pose_suite.errors` (and torch, openvino, onnxruntime).
"""
