"""Many inputs: the local loop, the scheduler, segments and Ray.

Owns: what every run does before models load or Ray starts (names checked,
output locked: :mod:`.claim`), the local executor and the batch's result
and summary (:mod:`.local`), which unit goes where and what each answer
means, without Ray (:mod:`.scheduler`), cutting long videos into segments
and stitching
them (:mod:`.segments`), and Ray: connecting and sizing
(:mod:`.ray_cluster`), submitting (:mod:`.ray_executor`) and the actors
(:mod:`.ray_worker`).
May import: :mod:`pose_suite.service` and every room below it.
"""
