"""Internals shared by the suite's four scripts, in rooms by stage.

The scripts at the project's root are the entry points users know
(``detection_service.py``, ``pose_extraction_service.py``,
``pose_analysis_service.py``, ``creating_config.py``). Data flows one way,
and so do the imports (``tests/test_layout.py`` guards it)::

    cli, evaluate          the command-line edges
      -> batch             many inputs: local loop, scheduler, segments, Ray
        -> service         one input: the per-frame loop, its bookkeeping
          -> movement      clean trajectories, angles, metres, OpenSim
                           files from a finished result, without models
          -> outputs       results, exports, overlay, summary, report
            -> media       what an input is and how its frames are read
          -> models        building the two models, weights, precision
            -> runtimes    fast mode's heavy part through OpenVINO or
                           ONNX Runtime, where measured faster
            -> config      config.json validated into a typed object
              -> errors    one exception type per kind of user error

A room imports only rooms below it (``outputs`` may read ``media``: the
overlay and the report draw on an input's frames; ``media`` and ``models``
never import each other), never one above it, and no module imports
itself back through a circle.

For a notebook, :func:`read_result` (from :mod:`pose_suite.outputs.reading`)
reads a result JSON back as numpy arrays and pandas tables. It is imported
when first asked for, so ``import pose_suite`` loads nothing else.
"""

__all__ = ['read_result']


def __getattr__(name: str):
    if name == 'read_result':
        from pose_suite.outputs.reading import read_result
        return read_result
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    """The module's names with those loaded when first asked for (tab
    completion in a notebook offers ``read_result``)."""
    return sorted(set(globals()) | set(__all__))
