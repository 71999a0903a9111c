"""One input, analysed: the models run on every frame, written as one result.

Owns: :class:`~.analyser.PoseAnalyser` (the two models and the per-input
bookkeeping: output, resume, overlay, exports), the per-frame loop
(:mod:`.frames`), the result's ``meta`` (:mod:`.meta`), resume keys and
up-to-date decisions (:mod:`.resume`), and tracking and smoothing across
frames (:mod:`.tracking`).
May import: :mod:`pose_suite.outputs`, :mod:`pose_suite.media`,
:mod:`pose_suite.models`, :mod:`pose_suite.config`,
:mod:`pose_suite.errors`; never :mod:`pose_suite.batch`.
"""
