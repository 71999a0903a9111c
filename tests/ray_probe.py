"""Run by the Ray tests inside their network namespace, beside a running
batch: join the cluster, wait until a unit of the batch has written at least
``--frames`` frames, print where it runs (JSON) and, with ``--kill``, kill
the worker process analysing it (kill -9). With ``--kill-when-exists
PATH`` the worker found so is stopped (SIGSTOP) once PATH exists (polled
every millisecond), then killed, and the JSON lists the files beside PATH
at that moment; with ``--remove-first FILE`` too, FILE is removed while
the worker is stopped, before the kill: the state a kill leaves a moment
later, once the worker has removed FILE (a window too short to hit by
polling).

The process is found through Ray: the batch's ``progress`` actor (named, in
a ``pose-suite-*`` namespace) holds each unit's node, worker and pid.
"""
import argparse
import json
import os
import signal
import sys
import time

import ray


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--address', required=True)
    parser.add_argument('--frames', type=int, default=1)
    parser.add_argument('--on-node-with', help='a custom resource name: '
                        'only a unit on the node that has it')
    parser.add_argument('--kill', action='store_true')
    parser.add_argument('--kill-when-exists', metavar='PATH')
    parser.add_argument('--remove-first', metavar='FILE')
    args = parser.parse_args()
    ray.init(address=args.address, log_to_driver=False,
             logging_level='ERROR')
    node_id = None
    if args.on_node_with:
        node_id = next(node['NodeID'] for node in ray.nodes()
                       if node['Alive']
                       and args.on_node_with in node['Resources'])
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        for actor in ray.util.list_named_actors(all_namespaces=True):
            if actor['name'] != 'progress' or \
                    not actor['namespace'].startswith('pose-suite-'):
                continue
            progress = ray.get_actor('progress',
                                     namespace=actor['namespace'])
            try:
                status = ray.get(progress.status.remote(), timeout=5)
            except Exception:  # noqa: BLE001  the batch may be ending
                continue
            for unit, where in status.items():
                if where['frames'] < args.frames or (
                        node_id and not node_id.startswith(where['node_id'])):
                    continue
                if args.kill_when_exists:
                    where['beside'] = _kill_when(
                        args.kill_when_exists, args.remove_first,
                        where['pid'], deadline)
                elif args.kill:
                    os.kill(where['pid'], signal.SIGKILL)
                print(json.dumps(dict(where, unit=unit)), flush=True)
                return 0
        time.sleep(0.2)
    return 1


def _kill_when(path: str, remove_first, pid: int, deadline: float) -> list:
    """Stop ``pid`` once ``path`` exists, remove ``remove_first`` (if
    given), and kill it; the names beside ``path`` before the removal."""
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit(f'{path} never appeared')
        time.sleep(0.001)
    os.kill(pid, signal.SIGSTOP)
    beside = sorted(os.listdir(os.path.dirname(path)))
    if remove_first:
        os.unlink(remove_first)
    os.kill(pid, signal.SIGKILL)
    return beside


if __name__ == '__main__':
    sys.exit(main())
