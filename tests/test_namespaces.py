"""The loopback-only network namespaces of the Ray, GPU and offline tests
(``ray_cluster.network_namespace``): one left by a run killed with SIGKILL
is deleted by the next run, never one of a run still going."""
import os
import subprocess
import sys

import pytest

from ray_cluster import NO_NAMESPACE, remove_stale_namespaces

pytestmark = pytest.mark.skipif(NO_NAMESPACE is not None,
                                reason=NO_NAMESPACE or '')


def _namespaces() -> set:
    listed = subprocess.run(['ip', 'netns', 'list'], capture_output=True,
                            text=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def test_a_namespace_of_a_killed_run_is_deleted_by_the_next():
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()  # its pid is free now: a test process killed
    dead = f'pose-suite-stale-{child.pid}-a1b2'
    living = f'pose-suite-stale-{os.getpid()}-c3d4'
    for name in (dead, living):
        subprocess.run(['ip', 'netns', 'add', name], check=True)
    try:
        assert remove_stale_namespaces('pose-suite-stale') == [dead]
        assert dead not in _namespaces() and living in _namespaces()
    finally:
        for name in (dead, living):
            subprocess.run(['ip', 'netns', 'delete', name],
                           capture_output=True)
