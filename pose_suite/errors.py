"""One exception type per kind of user error.

Each carries a one-line, human-readable message naming the problem and the
file involved; the command-line edge prints ``error: <message>`` and exits
non-zero without a traceback.
"""


class SuiteError(Exception):
    """Base class of every error the user can fix (bad file, bad value...)."""


class ConfigError(SuiteError):
    """config.json is missing, not JSON, or holds an unknown key or bad value."""


class InputError(SuiteError):
    """The input is missing, unreadable, not an image or video, or corrupt."""


class NotMediaError(InputError):
    """The input is, by its content, no image or video at all (text,
    subtitles, a document, audio only). In a folder such files are skipped;
    given as the input they are refused."""


class CheckpointError(SuiteError):
    """A checkpoint is missing, not a checkpoint, unsafe, or for another model."""


class ModelConfigError(SuiteError):
    """A model config file (mmdet/mmpose .py config) is missing or invalid."""


class DeviceError(SuiteError):
    """The requested device (e.g. ``cuda``) does not exist on this machine."""


class OutputError(SuiteError):
    """The output path cannot be written."""


class ResumeError(SuiteError):
    """``--resume`` was asked for a partial result of another input/config."""


class DownloadError(SuiteError):
    """A weight file could not be downloaded or failed its checksum."""


class ClusterError(SuiteError):
    """Ray cannot be started or reached, or the cluster lacks what the
    config asks of it (GPUs, cores, a shared output folder)."""


class SuiteWarning(UserWarning):
    """Something the user should know that does not stop the run."""


def show_warnings_as_one_line() -> None:
    """At a command-line edge: print the suite's warnings as one line each
    (``warning: <text>``) and hide the libraries' own, which speak to their
    developers (deprecations and the like)."""
    import sys
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        print(f'warning: {message}', file=sys.stderr)

    warnings.showwarning = show
    warnings.simplefilter('ignore')
    warnings.simplefilter('always', SuiteWarning)


def one_line(exc: BaseException) -> str:
    """An unexpected exception as one line: its type (``cv2.error``,
    ``OSError``) and the first line of its text."""
    kind = type(exc).__qualname__
    if type(exc).__module__ not in ('builtins', '__main__'):
        kind = f'{type(exc).__module__}.{kind}'
    text = str(exc).strip().splitlines()
    return f'{kind}: {text[0]}' if text else kind
