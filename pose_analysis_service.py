"""Whole-body pose analysis of an image or video, written to one JSON file.

Command line::

    python pose_analysis_service.py [--config config.json] [--input PATH]
                                    [--recursive] [--output PATH]
                                    [--device D] [--resume] [--quiet]
                                    [--executor local|ray]

In a notebook::

    from pose_analysis_service import PoseAnalysisService
    service = PoseAnalysisService('config.json')   # or a dict of keys
    persons = service.analyse_frame(frame_bgr)     # one frame, in memory
    service.run()                                  # config's input -> JSON

The service itself lives in :mod:`pose_suite.service`, where both executors
(:mod:`pose_suite.batch`, :mod:`pose_suite.ray_worker`) import it; this
script keeps its name, its class and its command line.
"""
import sys
from typing import List, Optional

from pose_suite.service import InputResult, PoseAnalysisService

__all__ = ['PoseAnalysisService', 'InputResult', 'main']


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point (see :mod:`pose_suite.cli`); returns the
    exit code."""
    from pose_suite.cli import run_command
    return run_command(argv, PoseAnalysisService)


if __name__ == '__main__':
    sys.exit(main())
