"""What a speed measurement depends on, and where it is remembered.

Fast mode decides by measuring (the bf16 probe of
:mod:`pose_suite.models.precision`, the runtime probe of :mod:`.choice`),
once per machine setting: the CPU (model name and flags), oneDNN's and
ATen's ISA caps, the thread count and what the caller adds (versions, the
model). The answers are kept in ``~/.cache/pose-suite/<name>.json`` so that
a machine keeps its decision from run to run (and ``--resume`` its
results).
"""
import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import torch


def machine_key(*extra: object) -> str:
    """A short hash of this machine setting and ``extra``."""
    cpu = ''
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith(('model name', 'flags')):
                cpu += line
            if line.startswith('flags'):
                break
    except OSError:
        cpu = 'unknown'
    parts = [cpu, os.environ.get('ONEDNN_MAX_CPU_ISA', ''),
             os.environ.get('DNNL_MAX_CPU_ISA', ''),
             os.environ.get('ATEN_CPU_CAPABILITY', ''),
             str(torch.get_num_threads()), *map(str, extra)]
    return hashlib.sha256('\n'.join(parts).encode()).hexdigest()[:16]


def cache_file(name: str) -> Path:
    """``~/.cache/pose-suite/<name>.json`` (``XDG_CACHE_HOME`` honoured)."""
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base) / 'pose-suite' / f'{name}.json'


def recall(name: str, key: str, valid: Callable[[object], bool]):
    """The answer stored under ``key`` in :func:`cache_file` ``name`` when
    it is ``valid``, else None."""
    try:
        known = json.loads(cache_file(name).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(known, dict) and key in known and valid(known[key]):
        return known[key]
    return None


def remember(name: str, key: str, answer: object) -> None:
    """Store ``answer`` under ``key`` (a read-only home: not stored, so
    measured again next time)."""
    path = cache_file(name)
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    known = known if isinstance(known, dict) else {}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f'.{path.name}.{os.getpid()}')
        temporary.write_text(json.dumps({**known, key: answer}))
        os.replace(temporary, path)
    except OSError:
        pass


def remembered(name: str, key: str, measure: Callable[[], object],
               valid: Callable[[object], bool]) -> object:
    """:func:`recall`, else ``measure()``, remembered."""
    answer = recall(name, key, valid)
    if answer is None:
        answer = measure()
        remember(name, key, answer)
    return answer
