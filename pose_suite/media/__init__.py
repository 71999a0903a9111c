"""Inputs and their frames: what an input is and how its frames are read.

Owns: the input search (:mod:`.inputs`: files, folders, patterns, lists,
cameras, streams), what a file is from its first bytes (:mod:`.sniff`),
frame reading with rotation, damage and end-of-file reports
(:mod:`.sources`, through :mod:`.captures`), images decoded upright
(:mod:`.images`), where the frames are, from the packets
(:mod:`.packets`), each frame's index and time (:mod:`.positions`),
when the video stream starts on its container's clock (:mod:`.clocks`), and
which frames FFmpeg decodes with errors it conceals (:mod:`.damage`).
May import: :mod:`pose_suite.config` and :mod:`pose_suite.errors`. The rest
of the pipeline sees frames, never a container.
"""
