"""config.json, validated once at the edge into a typed object.

Owns: the table of keys (:mod:`.keys`: default, help, kind of every key),
loading and validation into an :class:`AnalysisConfig` (:mod:`.loading`),
and what the ``input``, ``output`` and ``visualize_output`` values name
(:mod:`.specs`: streams, glob patterns, result and overlay names).
May import: :mod:`pose_suite.errors` only. Every other room reads the
config from here; nothing here reads media, models or results.
"""
from pose_suite.config.keys import (DEFAULTS, DET_CHECKPOINT, DET_CONFIG,
                                    POSE_CHECKPOINT, POSE_CONFIG)
from pose_suite.config.loading import (AnalysisConfig, apply_overrides,
                                       build_config, check_combination,
                                       load_config, read_config_file,
                                       validate_dict)

__all__ = ['AnalysisConfig', 'DEFAULTS', 'DET_CHECKPOINT', 'DET_CONFIG',
           'POSE_CHECKPOINT', 'POSE_CONFIG', 'apply_overrides',
           'build_config', 'check_combination', 'load_config',
           'read_config_file', 'validate_dict']
