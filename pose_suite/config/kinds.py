"""What values a config key takes (its *kind*): how each is validated,
how a ``creating_config.py`` flag's text becomes one, and its type in
:class:`pose_suite.config.AnalysisConfig`. The keys themselves are the table
in :mod:`.keys`.
"""
import json
import math
import re
from pathlib import Path
from typing import Any, Optional, Union

from pose_suite.config.specs import check_overlay_name
from pose_suite.errors import ConfigError

#: Shortest segment_s: each segment costs a seek, the decoding from the key
#: frame before it, and a call to a worker.
MIN_SEGMENT_S = 1.0
EXPORT_FORMATS = ('mmpose', 'coco', 'csv', 'openpose', 'pose2sim', 'angles',
                  'trc', 'mot')
_TRUE, _FALSE = ('true', 'yes', '1', 'on'), ('false', 'no', '0', 'off')


def flag_name(key: str) -> str:
    """``creating_config.py``'s flag of a key (``--bbox-thr``)."""
    return '--' + key.replace('_', '-')


def is_number(value) -> bool:
    """An int or float that is finite (JSON and "1e400" give Infinity and
    NaN, which are never a count or a threshold)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


class Kind:
    """What one key takes. ``validate`` returns the value normalised or
    raises :class:`ConfigError` naming the key; ``parse`` turns a
    command-line flag's text into the JSON value (validated afterwards)."""

    type: Any = str

    def validate(self, key: str, value: Any) -> Any:
        raise NotImplementedError

    def parse(self, key: str, text: str) -> Any:
        return text


class PathKind(Kind):
    type = Path

    def validate(self, key, value):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f'{key} must be a non-empty path string, got {value!r}')
        return value


class InputKind(PathKind):
    type = Union[Path, str]  # str: a camera, stream URL or glob pattern


class OverlayKind(Kind):
    type = Optional[Path]

    def validate(self, key, value):
        if not isinstance(value, str):
            raise ConfigError(f'{key} must be a path string ("" for none), '
                              f'got {value!r}')
        if value:
            check_overlay_name(value)
        return value


class Number(Kind):
    """A number; a flag's text is read as an int or a float."""

    type = float
    what = 'a number'

    def parse(self, key, text):
        return _number_text(key, text, self.what)


class Fraction(Number):

    def validate(self, key, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f'{key} must be a number in [0, 1], '
                              f'got {value!r}')
        if not 0.0 <= float(value) <= 1.0:  # NaN too
            raise ConfigError(f'{key} must be in [0, 1], got {value!r}')
        return float(value)


class Flag(Kind):
    type = bool

    def validate(self, key, value):
        if not isinstance(value, bool):
            raise ConfigError(f'{key} must be true or false, got {value!r}')
        return value

    def parse(self, key, text):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f'{flag_name(key)} must be true or false, got '
                          f'{text!r}')


class Whole(Number):
    type = int
    what = 'a whole number'

    def __init__(self, low: int):
        self.low = low

    def validate(self, key, value):
        if not is_number(value) or int(value) != value or value < self.low:
            raise ConfigError(f'{key} must be a whole number >= {self.low}, '
                              f'got {value!r}')
        return int(value)


class Choice(Kind):
    def __init__(self, *choices: str):
        self.choices = choices

    def validate(self, key, value):
        if value not in self.choices:
            said = ', '.join(self.choices[:-1]) + f' or {self.choices[-1]}'
            raise ConfigError(f'{key} must be {said}, got {value!r}')
        return value


class Device(Kind):
    _PATTERN = re.compile(r'^(cpu|auto|cuda(:\d+)?)$')

    def validate(self, key, value):
        if not isinstance(value, str) or not self._PATTERN.match(value):
            raise ConfigError('device must be cpu, cuda, cuda:N or auto, '
                              f'got {value!r}')
        return value


class Formats(Kind):
    type = tuple

    def validate(self, key, value):
        if not isinstance(value, (list, tuple)) or any(
                f not in EXPORT_FORMATS for f in value):
            raise ConfigError(f'{key} must be a list of {EXPORT_FORMATS}, '
                              f'got {value!r}')
        return list(dict.fromkeys(value))

    def parse(self, key, text):  # comma-separated, may be empty
        return [item.strip() for item in text.split(',') if item.strip()]


class Gpus(Number):

    def validate(self, key, value):
        if not is_number(value) or not 0 <= value <= 64 or (
                value > 1 and int(value) != value):
            raise ConfigError(f'{key} must be "auto", 0, a fraction of one '
                              f'GPU or a whole number, got {value!r}')
        return float(value)


class SegmentSeconds(Number):

    def validate(self, key, value):
        if not is_number(value) or not (
                value == 0 or MIN_SEGMENT_S <= value < 1e7):
            raise ConfigError(f'{key} must be 0 (off) or a number of seconds'
                              f' >= {MIN_SEGMENT_S:g}, got {value!r}')
        return float(value)


class Range(Kind):
    """``null`` (the whole input) or ``[start, end]`` (a tuple here),
    either end ``null`` (open); in seconds (``whole`` False) or frame indices (``whole``: the
    last one included). A flag's text: ``12.5-30``, ``12.5-``, ``-30``
    (or with a comma), ``none``."""

    type = Optional[tuple]

    def __init__(self, whole: bool):
        self.whole = whole
        self.unit = 'frame indices' if whole else 'seconds'

    def validate(self, key, value):
        if value is None:
            return None
        if not isinstance(value, (list, tuple)) or len(value) != 2 or any(
                end is not None and not self._end(end) for end in value):
            raise ConfigError(
                f'{key} must be null or [start, end] in {self.unit} '
                f'(numbers >= 0{", whole" if self.whole else ""}; null for '
                f'an open end), got {_shown_value(value)}')
        start, end = value
        if start is not None and end is not None and end < start:
            raise ConfigError(f'{key} ends before it starts: '
                              f'{_shown_value(value)}')
        if start is None and end is None:
            return None
        number = int if self.whole else float
        return (None if start is None else number(start),
                None if end is None else number(end))

    def _end(self, end) -> bool:
        if not is_number(end) or end < 0:
            return False
        return int(end) == end if self.whole else True

    def parse(self, key, text):
        return parse_range(text, flag_name(key), self.unit)


def parse_range(text: str, where: str, unit: str) -> Optional[list]:
    """``START-END`` (either side may be empty; a comma may stand for the
    dash) as ``[start, end]`` numbers or None; ``none``/``null``/"" as None
    (unchecked: the key's kind validates)."""
    text = text.strip()
    if text.lower() in ('', 'none', 'null'):
        return None
    match = re.fullmatch(r'([0-9.eE+]*)\s*[-,]\s*([0-9.eE+]*)', text)
    if not match:
        raise ConfigError(f'{where} must be START-END in {unit} (either may '
                          f'be left out: 12.5-30, 12.5-, -30), got {text!r}')
    ends = []
    for part in match.groups():
        try:
            ends.append(None if part == '' else (
                int(part) if part.isdigit() else float(part)))
        except ValueError:
            raise ConfigError(f'{where} must be START-END in {unit}, got '
                              f'{text!r}') from None
    return ends


class Rate(Number):
    """0 (off) or a positive number."""

    def validate(self, key, value):
        if not is_number(value) or value < 0 or value > 1e4:
            raise ConfigError(f'{key} must be 0 (off) or a number of frames '
                              f'per second > 0, got {value!r}')
        return float(value)


def _shown_value(value) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


class RayAddress(Kind):
    _PATTERN = re.compile(r'^(ray://)?[\w.\-\[\]:]+:\d+$')

    def validate(self, key, value):
        if not isinstance(value, str) or value != value.strip() or (
                value not in ('', 'auto') and not self._PATTERN.match(value)):
            raise ConfigError('ray_address must be "" (a private Ray), '
                              f'"auto", host:port or ray://host:port, '
                              f'got {value!r}')
        return value


class AutoOr(Kind):
    """``"auto"`` or what ``inner`` takes."""

    def __init__(self, inner: Kind, what: str):
        self.inner, self.what = inner, what
        self.type = Union[inner.type, str]

    def validate(self, key, value):
        if value == 'auto':
            return value
        try:
            return self.inner.validate(key, value)
        except ConfigError:
            raise ConfigError(f'{key} must be {self.what} or "auto", got '
                              f'{value!r}') from None

    def parse(self, key, text):
        if text == 'auto':
            return text
        try:
            return self.inner.parse(key, text)
        except ConfigError:
            raise ConfigError(f'{flag_name(key)} must be {self.what} or '
                              f'auto, got {text!r}') from None


def _number_text(key: str, text: str, what: str):
    try:
        return int(text) if re.fullmatch(r'[+-]?\d+', text.strip()) \
            else float(text)
    except ValueError:
        raise ConfigError(f'{flag_name(key)} must be {what}, got {text!r}') \
            from None
