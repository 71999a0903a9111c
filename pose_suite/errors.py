"""One exception type per kind of user error.

Each carries a one-line, human-readable message naming the problem and the
file involved; the command-line edge prints ``error: <message>`` and exits
non-zero without a traceback. Text that names files goes through
:func:`visible` wherever a person reads it (terminal, report, summary.csv).
"""
import argparse
import unicodedata

#: Unicode categories never shown as themselves in a name: controls (C0,
#: DEL, C1: newline, escape...), format characters (the bidirectional
#: overrides, embeddings and isolates, zero-width spaces and joiners, BOM),
#: lone surrogates (undecodable bytes of a file name) and the line and
#: paragraph separators.
_HIDDEN_CATEGORIES = frozenset(('Cc', 'Cf', 'Cs', 'Zl', 'Zp'))
_SHORT_ESCAPES = {'\n': '\\n', '\r': '\\r', '\t': '\\t'}
#: ... and the characters outside those categories that show nothing:
#: Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt,
#: Unicode 15: the HANGUL FILLERs, variation selectors, the combining
#: grapheme joiner, Mongolian free variation selectors, tags...) and the
#: BRAILLE PATTERN BLANK, as inclusive ranges.
_BLANK_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x2800, 0x2800), (0x3164, 0x3164), (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))
_BLANK = frozenset(chr(code) for start, end in _BLANK_RANGES
                   for code in range(start, end + 1))


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


class MovementError(SuiteError):
    """The movement data cannot be made from a result (cut short, not
    tracked, a filter its frame rate cannot take)."""


class ResultError(SuiteError):
    """A result JSON cannot be read back: missing, not a result of this
    suite, or damaged before its end (``pose_suite.read_result``)."""


class ResumeError(SuiteError):
    """``--resume`` was asked for a partial result of another input/config."""


class DownloadError(SuiteError):
    """A weight file could not be downloaded or failed its checksum."""


class ClusterError(SuiteError):
    """Ray cannot be started or reached, or the cluster lacks what the
    config asks of it (GPUs, cores, a shared output folder)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse's parser, its usage errors (an unknown flag, a missing or
    bad value) one ``error: ...`` line and exit status 2, not the usage
    block (``--help`` shows that)."""

    def error(self, message: str):
        self.exit(2, f'error: {visible(message)} (see --help)\n')


class SuiteWarning(UserWarning):
    """Something the user should know that does not stop the run."""


def show_warnings_as_one_line() -> None:
    """At a command-line edge: print the suite's warnings as one line each
    (``warning: <text>``) and hide the libraries' own, which speak to their
    developers (deprecations and the like)."""
    import sys
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        print(f'warning: {visible(message)}', file=sys.stderr)

    warnings.showwarning = show
    warnings.simplefilter('ignore')
    warnings.simplefilter('always', SuiteWarning)


def visible(text) -> str:
    """``text`` (a file name, a path, a message naming one) with every
    character that is invisible or reorders text escaped as Python writes
    it: ``\\n``, ``\\x1b``, ``\\u202e`` (RIGHT-TO-LEFT OVERRIDE), ``\\u200b``,
    ``\\udcff`` (an undecodable byte). So ``innocent<RLO>gpj.exe`` reads
    ``innocent\\u202egpj.exe``, not ``innocentexe.jpg``, and a name never
    breaks a line. Characters that show nothing (HANGUL FILLER ``\\u3164``,
    variation selectors, BRAILLE PATTERN BLANK: :data:`_BLANK_RANGES`) are
    escaped too. Other text, backslashes included, is kept as it is."""
    return ''.join(_escaped(char) if char in _BLANK or unicodedata.category(
        char) in _HIDDEN_CATEGORIES else char for char in str(text))


def opencv_name(path, error=None, what: str = 'input') -> str:
    """``str(path)`` for OpenCV, which crashes the process (a segmentation
    fault) on a name holding a byte that is not UTF-8 (an undecodable byte
    Python keeps as a lone surrogate). Such a name raises ``error``
    (default InputError) telling the user to rename the file."""
    text = str(path)
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        raise (error or InputError)(
            f'{what} name is not valid UTF-8, which OpenCV cannot open: '
            f'{text} (rename it)') from None
    return text


def _escaped(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    return f'\\x{code:02x}' if code < 0x100 else \
        f'\\u{code:04x}' if code < 0x10000 else f'\\U{code:08x}'


def one_line(exc: BaseException) -> str:
    """An unexpected exception as one line: its type (``cv2.error``,
    ``OSError``) and the first line of its text."""
    kind = type(exc).__qualname__
    if type(exc).__module__ not in ('builtins', '__main__'):
        kind = f'{type(exc).__module__}.{kind}'
    text = str(exc).strip().splitlines()
    return f'{kind}: {text[0]}' if text else kind
