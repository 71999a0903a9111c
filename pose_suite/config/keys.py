"""Every key of config.json, in one table: name, default, help, kind.

The defaults (:data:`DEFAULTS`), the help (:data:`HELP`, shown by
``creating_config.py --help``), each key's validation
(:func:`validate_value`), the flag parsing of ``creating_config.py``
(:func:`parse_flag`) and the fields of
:class:`pose_suite.config.AnalysisConfig` all come from :data:`KEYS`: a key
is added in one place. A *kind* says what values a key takes, how a flag's
text becomes one, and its type in ``AnalysisConfig`` (:mod:`.kinds`).
"""
import dataclasses
import difflib
from typing import Any, Dict, Tuple

from pose_suite.config.kinds import (  # noqa: F401  (re-exported)
    EXPORT_FORMATS, MIN_SEGMENT_S, AutoOr, Choice, Device, Flag, Formats,
    Fraction, Gpus, InputKind, Kind, OverlayKind, PathKind, Range, Rate,
    RayAddress, SegmentSeconds, Whole, flag_name, is_number)
from pose_suite.config.movement_kinds import (FilterKind, FloorAngle,
                                              FloorOrigin, HampelKind, Height)
from pose_suite.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Key:
    name: str
    default: Any
    help: str
    kind: Kind


DET_CONFIG = 'config_files/rtmdet_m_640-8xb32_coco-person.py'
DET_CHECKPOINT = ('config_files/'
                  'rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth')
POSE_CONFIG = ('config_files/'
               'td-hm_hrnet-w48_dark-8xb32-210e_coco-wholebody-384x288.py')
POSE_CHECKPOINT = ('config_files/'
                   'hrnet_w48_coco_wholebody_384x288_dark-f5726563_20200918.pth')

#: Every key of config.json, in the order they are written.
KEYS: Tuple[Key, ...] = (
    Key('det_config', DET_CONFIG,
        'MMDetection config of the person detector (.py).', PathKind()),
    Key('det_checkpoint', DET_CHECKPOINT, 'Detector weights (.pth).',
        PathKind()),
    Key('pose_config', POSE_CONFIG,
        'MMPose config of the whole-body pose model (.py).', PathKind()),
    Key('pose_checkpoint', POSE_CHECKPOINT, 'Pose model weights (.pth).',
        PathKind()),
    Key('input', 'data/football_5frames_720p.mp4',
        'Image or video; or a folder, a glob pattern, a list file (.txt, one '
        'path a line), a camera index (0) or a stream URL.', InputKind()),
    Key('recursive', False,
        'true: a folder input is searched in its sub-folders too (the '
        'results keep the sub-folder layout); a glob pattern recurses with '
        '** either way.', Flag()),
    Key('output', 'output/',
        'JSON file to write (a path ending in .json); any other path is a '
        'folder that gets <input file name>.json inside it (clip.mp4 -> '
        'clip.mp4.json).', PathKind()),
    Key('device', 'auto',
        'cpu, cuda, cuda:N, or auto (cuda when available, else cpu).',
        Device()),
    Key('det_cat_id', 0,
        'Class index of "person" in the detector (0 for COCO and for the '
        'one-class person detector).', Whole(0)),
    Key('bbox_thr', 0.3,
        'Keep detections whose score is above this, in [0, 1].', Fraction()),
    Key('nms_thr', 0.3,
        'IoU above which overlapping person boxes are merged, in [0, 1].',
        Fraction()),
    Key('kpt_thr', 0.3,
        'Keypoint score counted as visible when reporting and drawing, in '
        '[0, 1]; all 133 keypoints are always written.', Fraction()),
    Key('resume', False,
        'true: continue an interrupted run of the same input and settings '
        'from its last completed frame, and keep the results already '
        'complete for the same input and settings ("up to date").', Flag()),
    Key('precision', 'fp32',
        'fp32 (exact, the default), bf16 (fast mode where this machine runs '
        'bf16 faster, measured; else fp32, said in one line), fp32-fast '
        '(fast mode without bf16 or fp16), fp16 (fast mode, CUDA only) or '
        'auto (the fastest of these the device really runs: fp16 on CUDA, '
        'bf16 where measured faster, else fp32).',
        Choice('fp32', 'bf16', 'fp32-fast', 'fp16', 'auto')),
    Key('runtime', 'auto',
        'What runs the models\' backbones and heads in fast mode on a CPU: '
        'auto (OpenVINO or ONNX Runtime where their part measured at least '
        '1.3x PyTorch\'s on this machine, once: about 1.15x on a whole run; '
        'else PyTorch), pytorch, openvino or onnxruntime. Exact mode (fp32) '
        'always runs PyTorch.',
        Choice('auto', 'pytorch', 'openvino', 'onnxruntime')),
    Key('flip_test', 'auto',
        'true: the pose model also runs on each mirrored crop and averages '
        '(mmpose\'s flip test); false: half the pose model\'s work, slightly '
        'less accurate; "auto": as the pose config says (on for the shipped '
        'one).', AutoOr(Flag(), 'true or false')),
    Key('det_interval', 1,
        'Run the detector every N video frames and, in between, take each '
        'person\'s box from their previous keypoints (1: detect on every '
        'frame).', Whole(1)),
    Key('time_range', None,
        'Analyse only [start_s, end_s] of a video, in seconds of its '
        'timestamp_s (either end null: open), e.g. [12.5, 30]; null: all of '
        'it. Not with frame_range.', Range(whole=False)),
    Key('frame_range', None,
        'Analyse only frames [first, last] of a video (source frame indices, '
        'last included; either null: open), e.g. [300, 899]; null: all. Not '
        'with time_range.', Range(whole=True)),
    Key('frame_step', 1,
        'Analyse every Nth frame of the range (1: every frame). Not with '
        'target_fps.', Whole(1)),
    Key('target_fps', 0,
        'Analyse about this many frames a second: the frame nearest each '
        '1/target_fps tick of the true timestamps, from the range\'s first '
        'frame (0: off; at most the video\'s own rate). Not with '
        'frame_step.', Rate()),
    Key('max_persons', 0,
        'Keep at most this many persons a frame, chosen by person_order '
        'before the pose model runs, so that it runs less (0: every person '
        'found).', Whole(0)),
    Key('person_order', 'largest',
        'Which persons max_persons keeps: largest (box area), score (the '
        'detector\'s box score) or longest (on a video with tracking: the '
        'tracks seen in most frames so far, then the largest).',
        Choice('largest', 'score', 'longest')),
    Key('export_formats', [],
        'Also write the results as any of: mmpose (the JSON of mmpose\'s '
        'demo), coco (COCO keypoint results), csv (one row per person and '
        'frame), openpose (OpenPose\'s files, one per frame, BODY_25, face '
        'and hands), pose2sim (the same with all 133 points, in the pose/ '
        'folder Pose2Sim reads), angles (one row per person and frame, a '
        'column per angle; needs angles), trc (OpenSim markers of each '
        'track, pixels and metres) or mot (OpenSim angles of each track; '
        'needs angles).', Formats()),
    Key('tracking', True,
        'Give each person of a video a track_id that stays the same from '
        'frame to frame.', Flag()),
    Key('smoothing', False,
        'One-Euro filter each tracked person\'s keypoints over time (needs '
        'tracking); the measured ones stay in keypoints_raw.', Flag()),
    Key('angles', False,
        'true: write each person\'s joint and segment angles in degrees, as '
        'Sports2D defines them (ankles, knees, hips, shoulders, elbows, '
        'wrists; feet, shanks, thighs, pelvis, trunk, shoulders, arms, '
        'forearms, hands), from the smoothed keypoints when smoothing; null '
        'where a point is below kpt_thr.', Flag()),
    # The movement chain (pose_suite.movement), run on the finished result
    # without the models: changing these never analyses a video again.
    Key('interp_max_gap', 0,
        'Movement data: fill a tracked person\'s missing points (not found, '
        'or below kpt_thr) over gaps of at most this many analysed frames, '
        'on the true timestamps; longer gaps stay null (0: off).', Whole(0)),
    Key('interp_kind', 'linear',
        'How interp_max_gap fills: linear, slinear, quadratic or cubic '
        '(scipy\'s interp1d, as Pose2Sim).',
        Choice('linear', 'slinear', 'quadratic', 'cubic')),
    Key('fill_large_gaps', 'none',
        'Gaps longer than interp_max_gap: none (stay null) or last_value '
        '(the last point seen, as Sports2D\'s fill_large_gaps_with).',
        Choice('none', 'last_value')),
    Key('hampel', False,
        'Movement data: replace outliers by the median of their window '
        '(Hampel): true (7 frames at 30 fps, scaled with the rate; 2 '
        'sigmas), false, or {"window_frames": N or "auto", "n_sigma": S}.',
        HampelKind()),
    Key('filter', {'type': 'none'},
        'Movement data: zero-phase filter of each trajectory, e.g. {"type": '
        '"butterworth", "cutoff_hz": 6, "order": 4}; types butterworth, '
        'gaussian (sigma_frames), loess (nb_values), median '
        '(kernel_frames), kalman (trust_ratio, smooth), one_euro '
        '(cutoff_hz, beta, d_cutoff_hz) or none.', FilterKind()),
    Key('person_height_m', 0.0,
        'Movement data in metres too: the tracked person\'s height in '
        'metres sets the scale, the floor the axes (0: pixels only).',
        Height()),
    Key('floor_angle', 'auto',
        'The floor\'s angle in the image for metres: "auto" (from the feet '
        'while they rest, as Sports2D) or degrees.', FloorAngle()),
    Key('floor_origin', 'auto',
        'The origin of metres: "auto" (on the floor line, from the feet, as '
        'Sports2D) or [x, y] pixels.', FloorOrigin()),
    Key('report', True,
        'After a folder, pattern or list run: also write report.html (the '
        'table, a thumbnail and a plot per input) beside summary.csv, '
        'which is always written.', Flag()),
    Key('visualize_output', '',
        'Also draw the results: an image path for an image, an .mp4 for a '
        'video or stream, a folder (no suffix) for several inputs ("": '
        'off).', OverlayKind()),
    Key('quiet', False,
        'true: no progress bar and no summary line (also --quiet).', Flag()),
    Key('executor', 'local',
        'local: one input after another in this process; ray: the inputs '
        'shared among Ray workers on this machine or a cluster (see "Many '
        'videos, many machines").', Choice('local', 'ray')),
    Key('ray_address', '',
        'executor ray: "" starts a private Ray on this machine, "auto" joins '
        'the cluster this machine is part of, or host:port / '
        'ray://host:10001.', RayAddress()),
    Key('workers', 'auto',
        'executor ray: model replicas, each analysing whole inputs; "auto": '
        'as many as fit on the nodes (each node\'s CPUs divided by '
        'threads_per_worker, or its GPUs by gpus_per_worker).',
        AutoOr(Whole(1), 'a whole number >= 1')),
    Key('threads_per_worker', 1,
        'executor ray: CPU cores (and torch threads) given to each worker.',
        Whole(1)),
    Key('gpus_per_worker', 'auto',
        'executor ray: GPUs per worker, fractional to share one (0.5 = two '
        'workers a GPU); "auto": 1 on a cluster with GPUs (unless device is '
        'cpu), else 0.',
        AutoOr(Gpus(), '0, a fraction of one GPU or a whole number')),
    Key('segment_s', 0.0,
        'executor ray: cut videos longer than this many seconds (at least '
        f'{MIN_SEGMENT_S:g}) into segments analysed in parallel and stitched '
        'into one result (0: off).', SegmentSeconds()),
)

BY_NAME: Dict[str, Key] = {key.name: key for key in KEYS}
#: Every key with its default, in the order they are written.
DEFAULTS: Dict[str, Any] = {key.name: key.default for key in KEYS}
#: One sentence per key, used by ``creating_config.py --help``.
HELP: Dict[str, str] = {key.name: key.help for key in KEYS}
#: Keys holding paths, resolved against the config file's folder.
PATH_KEYS = tuple(key.name for key in KEYS
                  if isinstance(key.kind, PathKind))


def validate_value(key: str, value: Any) -> Any:
    """Check one key's value and return it normalised.

    Raises:
        ConfigError: naming the key, the value and what is allowed.
    """
    if key not in BY_NAME:
        raise ConfigError(f'unknown config key {key!r}{suggest(key)}')
    return BY_NAME[key].kind.validate(key, value)


def suggest(key: str) -> str:
    """" (did you mean 'kpt_thr'?)" for a mistyped key, else ""."""
    close = difflib.get_close_matches(key, BY_NAME, n=1)
    return f' (did you mean {close[0]!r}?)' if close else ''


def parse_flag(key: str, text: str) -> Any:
    """A ``creating_config.py`` flag's text as the key's JSON value (not
    yet validated: :func:`validate_value` does that)."""
    return BY_NAME[key].kind.parse(key, text)
