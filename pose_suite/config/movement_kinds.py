"""The kinds of the movement keys (:mod:`pose_suite.movement`): the
zero-phase filter, the Hampel outlier test, the person's height and the
floor. Their names and defaults are Pose2Sim's and Sports2D's, so that a
user of those tools finds the same knobs.
"""
import json
from typing import Any, Dict, Tuple, Union

from pose_suite.config.kinds import (Kind, Number, _shown_value, flag_name,
                                     is_number)
from pose_suite.errors import ConfigError

#: Each filter type's parameters and their defaults (Pose2Sim's own:
#: ``Config.toml`` of Pose2Sim 0.10 / Sports2D 0.8). ``order`` of
#: Butterworth is the whole dual-pass order (a 4th order runs a 2nd-order
#: filter forwards and backwards), as Pose2Sim counts it.
FILTER_PARAMETERS: Dict[str, Dict[str, float]] = {
    'none': {},
    'butterworth': {'cutoff_hz': 6.0, 'order': 4},
    'gaussian': {'sigma_frames': 1.0},
    'loess': {'nb_values': 5},
    'median': {'kernel_frames': 3},
    'kalman': {'trust_ratio': 500, 'smooth': True},
    'one_euro': {'cutoff_hz': 2.5, 'beta': 0.9, 'd_cutoff_hz': 1.0},
}
#: Parameters that are whole numbers, and the least each takes.
_WHOLE = {'order': 2, 'nb_values': 2, 'kernel_frames': 1, 'trust_ratio': 1}
#: The range each parameter takes: beyond it the filters' arithmetic
#: breaks (a Butterworth of order 40 in Pose2Sim's b, a form blows up; a
#: cut-off of 1e-300 Hz has no filter) or the memory runs out (a kernel of
#: a million frames).
_RANGE = {'cutoff_hz': (0.01, 1000.0), 'order': (2, 8),
          'sigma_frames': (0.01, 1000.0), 'nb_values': (2, 10000),
          'kernel_frames': (1, 1001), 'trust_ratio': (1, 10 ** 9),
          'beta': (0.0, 1e6), 'd_cutoff_hz': (0.01, 1000.0)}
#: Hampel's defaults: Sports2D's (a window of 7 frames at 30 fps, scaled
#: with the frame rate; 2 sigmas).
HAMPEL_DEFAULTS = {'window_frames': 'auto', 'n_sigma': 2.0}


class FilterKind(Kind):
    """``{"type": "butterworth", "cutoff_hz": 6, "order": 4}``: a type of
    :data:`FILTER_PARAMETERS` and any of its parameters (the rest take the
    defaults); ``"butterworth"`` alone is the type with its defaults. A
    flag's text: ``butterworth``, ``butterworth,cutoff_hz=6,order=4`` or
    the JSON object."""

    type = dict

    def validate(self, key, value):
        if isinstance(value, str):
            value = {'type': value}
        if not isinstance(value, dict) or 'type' not in value:
            raise ConfigError(
                f'{key} must be {{"type": ..., parameters}} with a type of '
                f'{", ".join(FILTER_PARAMETERS)}, got {_shown_value(value)}')
        kind = value['type']
        if kind not in FILTER_PARAMETERS:
            raise ConfigError(f'{key} type must be one of '
                              f'{", ".join(FILTER_PARAMETERS)}, got {kind!r}')
        known = FILTER_PARAMETERS[kind]
        unknown = sorted(set(value) - set(known) - {'type'})
        if unknown:
            raise ConfigError(
                f'{key} {kind} takes {", ".join(known) or "no parameters"}, '
                f'not {", ".join(unknown)}')
        checked = {'type': kind}
        for name, default in known.items():
            checked[name] = _parameter(key, kind, name,
                                       value.get(name, default))
        return checked

    def parse(self, key, text):
        text = text.strip()
        if text.startswith('{'):
            try:
                return json.loads(text)
            except ValueError:
                raise ConfigError(f'{flag_name(key)} is not valid JSON: '
                                  f'{text!r}') from None
        kind, *pairs = [part.strip() for part in text.split(',')]
        value: Dict[str, Any] = {'type': kind}
        for pair in pairs:
            name, sep, number = pair.partition('=')
            if not sep:
                raise ConfigError(f'{flag_name(key)} takes TYPE or '
                                  f'TYPE,name=value,..., got {text!r}')
            value[name.strip()] = _flag_value(key, number.strip())
        return value


def _flag_value(key: str, text: str):
    if text.lower() in ('true', 'false'):
        return text.lower() == 'true'
    return Number().parse(key, text)


def _parameter(key: str, kind: str, name: str, value):
    where = f'{key} {kind} {name}'
    if name == 'smooth':
        if not isinstance(value, bool):
            raise ConfigError(f'{where} must be true or false, got {value!r}')
        return value
    low, high = _RANGE[name]
    if not is_number(value) or value <= 0 and name != 'beta' or \
            not low <= value <= high:
        raise ConfigError(f'{where} must be a number in [{low:g}, {high:g}]'
                          f', got {value!r}')
    if name in _WHOLE:
        if int(value) != value or value < _WHOLE[name]:
            raise ConfigError(f'{where} must be a whole number >= '
                              f'{_WHOLE[name]}, got {value!r}')
        if name == 'order' and value % 2:
            raise ConfigError(f'{where} must be even (the filter runs '
                              f'forwards and backwards), got {value!r}')
        if name == 'kernel_frames' and not value % 2:
            raise ConfigError(f'{where} must be odd, got {value!r}')
        return int(value)
    return float(value)


class HampelKind(Kind):
    """``false`` (off), ``true`` (Sports2D's defaults) or
    ``{"window_frames": 7 or "auto", "n_sigma": 2}``; a given window or
    sigma stays as given (``true`` stays ``true``)."""

    type = Union[bool, dict]

    def validate(self, key, value):
        if value is False or value is None:
            return False
        if value is True:
            return True
        if not isinstance(value, dict) or set(value) - set(HAMPEL_DEFAULTS):
            raise ConfigError(
                f'{key} must be false, true or {{"window_frames": N or '
                f'"auto", "n_sigma": S}}, got {_shown_value(value)}')
        checked = {**HAMPEL_DEFAULTS, **value}
        window = checked['window_frames']
        if window != 'auto' and (not is_number(window) or
                                 int(window) != window or window < 3):
            raise ConfigError(f'{key} window_frames must be "auto" or a '
                              f'whole number >= 3, got {window!r}')
        if not is_number(checked['n_sigma']) or checked['n_sigma'] <= 0:
            raise ConfigError(f'{key} n_sigma must be a number > 0, got '
                              f'{checked["n_sigma"]!r}')
        return {'window_frames': window if window == 'auto' else int(window),
                'n_sigma': float(checked['n_sigma'])}

    def parse(self, key, text):
        if text.strip().startswith('{'):
            return FilterKind().parse(key, text)
        return {'true': True, 'false': False}.get(text.strip().lower(), text)


class Height(Number):
    """0 (off: pixels only) or a person's height in metres."""

    def validate(self, key, value):
        if not is_number(value) or not (value == 0 or 0.3 <= value <= 3.5):
            raise ConfigError(f'{key} must be 0 (off) or a height in metres '
                              f'from 0.3 to 3.5 (e.g. 1.75), got {value!r}')
        return float(value)


class FloorAngle(Kind):
    """``"auto"`` (from the feet, as Sports2D) or degrees."""

    type = Union[str, float]

    def validate(self, key, value):
        if value == 'auto':
            return value
        if not is_number(value) or abs(value) >= 90:
            raise ConfigError(f'{key} must be "auto" or degrees in '
                              f'(-90, 90), got {value!r}')
        return float(value)

    def parse(self, key, text):
        return text if text == 'auto' else Number().parse(key, text)


class FloorOrigin(Kind):
    """``"auto"`` (from the feet, as Sports2D) or ``[x, y]`` pixels."""

    type = Union[str, Tuple[float, float]]

    def validate(self, key, value):
        if value == 'auto':
            return value
        if not isinstance(value, (list, tuple)) or len(value) != 2 or \
                not all(is_number(v) and abs(v) <= 1e6 for v in value):
            raise ConfigError(f'{key} must be "auto" or [x, y] in pixels '
                              f'(within 1e6), got {_shown_value(value)}')
        return (float(value[0]), float(value[1]))

    def parse(self, key, text):
        if text == 'auto':
            return text
        parts = text.replace(',', ' ').split()
        return [Number().parse(key, part) for part in parts]
