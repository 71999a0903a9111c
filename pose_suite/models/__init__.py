"""The two models: building them from their configs and checkpoints.

Owns: building a model with mmdet's and mmpose's own ``init_*`` and test
pipelines (:mod:`.build`), checkpoint safety (:mod:`.checkpoints`), weight
download (:mod:`.weights`), the precision a device really runs
(:mod:`.precision`), the device and torch runtime (:mod:`.runtime`), what
differs on a GPU (:mod:`.device_ops`), the CUDA arithmetic of each mode
(:mod:`.cuda_arithmetic`), and at install time the driver check
(:mod:`.cuda_driver`), mmcv's build decision (:mod:`.install_mmcv`) and a
venv seeing its parent venv's packages (:mod:`.parent_venv`). The root scripts ``detection_service.py`` and
``pose_extraction_service.py`` belong here too.
May import: :mod:`pose_suite.runtimes` (fast mode's other runtimes),
:mod:`pose_suite.config` and :mod:`pose_suite.errors`.
"""
