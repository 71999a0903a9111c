"""What a run writes: results, exports, overlays, summary and report.

Owns: the result writer and reader (:mod:`.results`), atomic publishing
(:mod:`.publish`), the exports (:mod:`.exports`; OpenPose's and Pose2Sim's
folders: :mod:`.openpose`), the overlay (:mod:`.overlay`), and a batch's
summary table and report page (:mod:`.summary`, :mod:`.report`).
May import: :mod:`pose_suite.media` (the overlay and the report draw on an
input's frames), :mod:`pose_suite.config`, :mod:`pose_suite.errors`.
"""
