"""What a run writes: results, exports, overlays, summary and report.

Owns: the result's records and reader (:mod:`.results`; read back whole
as arrays and tables for a notebook: :mod:`.reading`), its streamed,
resumable writer (:mod:`.writer`), atomic publishing (:mod:`.publish`),
every output's name, checked before any work and never taken for an input
(:mod:`.naming`; against the filesystem's name limit: :mod:`.limits`), the
lock that keeps a second run off an output (:mod:`.lock`), the exports
(:mod:`.exports`; OpenPose's and Pose2Sim's
folders: :mod:`.openpose`), joint and segment angles (:mod:`.angles`;
plotted for the report: :mod:`.angle_plots`), the overlay (:mod:`.overlay`),
and a batch's
summary table and report page (:mod:`.summary`, :mod:`.report`).
May import: :mod:`pose_suite.media` (the overlay and the report draw on an
input's frames), :mod:`pose_suite.config`, :mod:`pose_suite.errors`.
"""
