"""The movement picture of docs/movement.md: one knee's trajectory,
measured and cleaned, from a result and its movement folder.

    .venv/bin/python examples/movement_plot.py RESULT.json OUT.png [--point right_knee]

RESULT.json is a result of a video analysed with tracking; its movement
folder (``RESULT.movement/``, made with ``--postprocess RESULT.json
--interp-max-gap ... --filter ...``) must be beside it. Draws the track
seen longest: the point's x and y as the result holds them (dots; a gap
where it was missing or below kpt_thr) and as the movement data has them
(line). matplotlib only.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('result', type=Path)
    parser.add_argument('picture', type=Path)
    parser.add_argument('--point', default='right_knee')
    args = parser.parse_args()
    result = json.loads(args.result.read_text(encoding='utf-8'))
    folder = args.result.with_name(args.result.name[:-len('.json')]
                                   + '.movement')
    movement = json.loads((folder / 'movement.json').read_text('utf-8'))
    names = result['meta']['keypoint_names']
    point = names.index(args.point)
    threshold = movement['movement']['settings']['kpt_thr']
    track = max(movement['tracks'], key=lambda t: len(t['frame_index']))
    raw = {}
    for frame in result['frames']:
        for person in frame['persons']:
            if person.get('track_id') == track['track_id'] and \
                    (person['keypoint_scores'][point] or 0) >= threshold:
                raw[frame['frame_index']] = person.get(
                    'keypoints_raw', person['keypoints'])[point]
    times = np.array(track['timestamp_s'])
    cleaned = np.array([[np.nan if v is None else v for v in xy]
                        for xy in np.array(track['keypoints'],
                                           dtype=object)[:, point]],
                       np.float64)
    measured = np.array([raw.get(f, [np.nan, np.nan])
                         for f in track['frame_index']], np.float64)
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot
    figure, axes = pyplot.subplots(2, 1, figsize=(7, 4), sharex=True)
    settings = movement['movement']['settings']
    for axis, column, label in zip(axes, (0, 1), ('x (px)', 'y (px)')):
        axis.plot(times, measured[:, column], 'o', markersize=3,
                  color='tab:gray', label='measured (result JSON)')
        axis.plot(times, cleaned[:, column], '-', color='tab:blue',
                  label='cleaned (movement.json)')
        axis.set_ylabel(f'{args.point} {label}')
    axes[0].set_title(
        f'track {track["track_id"]}: gaps ≤ {settings["interp_max_gap"]} '
        f'frames filled, {settings["filter"]["type"]} '
        f'{settings["filter"].get("cutoff_hz", "")} Hz', fontsize=10)
    axes[0].legend(fontsize=8, loc='best')
    axes[1].set_xlabel('time (s)')
    figure.tight_layout()
    figure.savefig(args.picture, dpi=100)
    print(f'{args.picture}: track {track["track_id"]}, {len(times)} frames')
    return 0


if __name__ == '__main__':
    sys.exit(main())
