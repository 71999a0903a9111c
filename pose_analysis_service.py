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
    service.run_many(['a.mp4', 'b.jpg'])           # a batch, with a summary

The models and the per-input work are :class:`pose_suite.service.analyser.
PoseAnalyser`, which both executors (:mod:`pose_suite.batch`) run; this
script keeps the name users know, adds the local batch (``run_many``) and
the command line.
"""
import sys
from pathlib import Path
from typing import List, Optional, Tuple, Union

from pose_suite.batch.local import publish_summary, run_local
from pose_suite.media.inputs import Inputs
from pose_suite.service.analyser import InputResult, PoseAnalyser

__all__ = ['PoseAnalysisService', 'InputResult', 'main']


class PoseAnalysisService(PoseAnalyser):
    """RTMDet person detection followed by HRNet whole-body pose, per frame
    (:class:`~pose_suite.service.analyser.PoseAnalyser`), and per batch.

    Args:
        config: path of a config.json, a dict of its keys (relative paths
            taken from the current folder), or an ``AnalysisConfig``.
        **overrides: config keys to change, e.g. ``device='cpu'``.
    """

    def run_many(self, inputs: Union[Inputs, List[Union[Path, str]]]
                 ) -> Tuple[List[Path], List[Tuple[str, str]],
                            List[Tuple[str, str]]]:
        """``run`` each input into the config's ``output`` folder (names:
        see :mod:`pose_suite.config.specs`), one after another in this
        process; a failing input does not stop the others, and one that
        turns out not to be media is skipped. Then ``summary.csv``,
        ``summary.json`` and (``report``) ``report.html`` are written there.
        (``executor: ray`` spreads them over workers:
        :func:`pose_suite.batch.ray_executor.run_on_ray`.)

        Returns:
            The JSON files written (or kept up to date, with ``resume``),
            ``(input, reason)`` per failure, and ``(input, reason)`` per
            file skipped as not media (those the search skipped first).
        Raises:
            OutputError: before any work, when two inputs would write the
            same file or ``output`` is one ``.json`` file.
        """
        result = run_local(self, inputs)
        publish_summary(self.config, result)
        return (result.outputs + result.up_to_date, result.failures,
                result.skipped)


def build_parser():
    """The command line's parser (:func:`pose_suite.cli.build_parser`)."""
    from pose_suite.cli import build_parser
    return build_parser()


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point (see :mod:`pose_suite.cli`); returns the
    exit code."""
    from pose_suite.cli import run_command
    return run_command(argv, PoseAnalysisService)


if __name__ == '__main__':
    sys.exit(main())
