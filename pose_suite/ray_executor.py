"""``executor: ray``: the inputs of a batch shared among Ray actors.

Each worker is an actor that loads the two models once and analyses whole
inputs (or segments of long videos, :mod:`pose_suite.segments`) with the
same ``PoseAnalysisService.run`` as a local run, so results are the same
file for file; only ``meta.run`` says where and how they were made. The
driver (this process) feeds free workers from a queue, longest input first,
with ``ray.wait``.

Failures: a worker process or node that dies is Ray's to handle: the actor
is restarted (``max_restarts``) and its call retried (``max_task_retries``);
the retried call resumes from the partial file the dead one left. A user
error in an input (corrupt, not media) is a result, not an exception, so Ray
never retries it. Ctrl-C kills the workers; partial files stay for
``--resume``.

Ray is imported only here, and only when ``executor: ray`` is used; the
actors are in :mod:`pose_suite.ray_worker`.
"""
import dataclasses
import os
import secrets
import socket
import sys
import time
import warnings
from collections import deque
from pathlib import Path
from typing import Dict, List, Optional

from pose_suite.batch import BatchResult, finished_line
from pose_suite.errors import (ClusterError, ConfigError, OutputError,
                               SuiteWarning, one_line)
from pose_suite.inputs import Inputs
from pose_suite.ray_worker import PROGRESS_INTERVAL_S, Progress, Worker
from pose_suite.segments import Segment, plan_segments, segment_file
from pose_suite.sources import open_source

#: Restarts of a dead worker, and retries of the call it was running.
MAX_RESTARTS = 2
MAX_TASK_RETRIES = 2
#: Seconds between calls to a worker whose node stopped answering.
UNAVAILABLE_WAIT_S = 2.0
#: Ray namespace prefix; the run's progress actor is named ``progress``.
NAMESPACE_PREFIX = 'pose-suite-'


@dataclasses.dataclass
class _Unit:
    """One call to a worker: a whole input, one segment of it, or the
    stitching of its segments."""

    unit_id: str
    number: int            # the input's position in the batch, from 1
    source: str
    output: Path           # the file this unit writes
    result: Path           # the input's result (a segment's: once stitched)
    frames: int            # frames expected, for ordering and progress
    segment: Optional[Segment] = None
    stitch_of: Optional[list] = None  # [(Segment, segment file)]
    unavailable: int = 0   # calls Ray answered "actor unavailable"


def run_on_ray(config, inputs: Inputs) -> BatchResult:
    """Analyse ``inputs`` on Ray workers (see the module's docstring).

    Raises:
        ClusterError, OutputError: before any input is analysed, with
        nothing written.
        KeyboardInterrupt: after the workers were stopped; partial files
        are kept.
    """
    if config.ray_address == '':
        # Ray's control plane runs code for whoever reaches it: a private
        # Ray gets a token of its own (read as Ray is imported).
        os.environ['RAY_AUTH_MODE'] = 'token'
        os.environ['RAY_AUTH_TOKEN'] = secrets.token_hex(32)
    ray = _import_ray()
    started = time.perf_counter()
    output_files = inputs.output_files(config.output)
    result = BatchResult(skipped=[(str(path), reason)
                                  for path, reason in inputs.skipped])
    queue = deque(_plan(config, inputs, output_files, result))
    namespace = NAMESPACE_PREFIX + secrets.token_hex(4)
    _connect(ray, config, namespace)
    try:
        if queue:
            _Driver(ray, config, queue, len(inputs.sources), result).run()
    finally:
        ray.shutdown()
    result.seconds = time.perf_counter() - started
    return result


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError('executor ray needs the ray package (make install '
                          'installs it; or pip install "ray[default]")') \
            from None
    return ray


def _plan(config, inputs: Inputs, output_files: List[Path],
          result: BatchResult) -> List[_Unit]:
    """The units of work, longest first. An input that cannot be opened is
    that input's failure (or skip) now, as in a local run, and goes to no
    worker."""
    units = []
    for number, (path, output) in enumerate(
            zip(inputs.sources, output_files), 1):
        try:
            source = open_source(path)
        except Exception as exc:  # noqa: BLE001  (see problem_of)
            result.add_problem(path, exc)
            continue
        frames = max(source.frame_count or 1, 1)
        segments = plan_segments(
            frames, source.fps or 0.0, config.segment_s,
            config.det_interval) \
            if source.kind == 'video' and config.segment_s else []
        if len(segments) < 2:
            units.append(_Unit(f'{number}', number, str(path), output,
                               output, frames))
            continue
        for index, segment in enumerate(segments):
            stop = segment.stop if segment.stop is not None else frames
            units.append(_Unit(
                f'{number}.{index + 1}', number, str(path),
                segment_file(output, index, len(segments)), output,
                max(stop - segment.start, 1), segment))
    return sorted(units, key=lambda unit: -unit.frames)


def _connect(ray, config, namespace: str) -> None:
    """Start a private Ray (``ray_address`` "") or join a cluster."""
    options = dict(namespace=namespace, log_to_driver=False,
                   logging_level='ERROR', configure_logging=True)
    if config.ray_address == '':
        target = 'a private Ray on this machine'
        options.update(include_dashboard=False, num_cpus=os.cpu_count())
    else:
        target = f'the Ray cluster at {config.ray_address}'
        options.update(address=config.ray_address)
        _check_reachable(config.ray_address)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            ray.init(**options)
    except Exception as exc:  # noqa: BLE001
        raise ClusterError(f'cannot start or join {target}: '
                           f'{one_line(exc)}') from None


def _check_reachable(address: str) -> None:
    """Fail at once when nothing listens at a host:port address: Ray's own
    connection retries take minutes (82 s measured with its timeouts cut
    to 5 s) before they give up.

    Raises:
        ClusterError
    """
    if address == 'auto':
        return  # Ray finds the local cluster's address, or fails at once
    host, _, port = address.split('://')[-1].rpartition(':')
    try:
        socket.create_connection((host.strip('[]'), int(port)),
                                 timeout=10).close()
    except OSError as exc:
        raise ClusterError(
            f'cannot reach the Ray cluster at {address}: '
            f'{exc.strerror or exc} (start one with `ray start --head`, '
            'or check ray_address)') from None


def _worker_shape(ray, config, wanted: int) -> dict:
    """How many workers, and what each needs, checked against the
    cluster's resources.

    Raises:
        ClusterError: the cluster cannot hold what the config asks.
    """
    total = ray.cluster_resources()
    cpus, gpus = total.get('CPU', 0), total.get('GPU', 0)
    gpus_per_worker = config.gpus_per_worker
    if gpus_per_worker == 'auto':
        gpus_per_worker = 1.0 if gpus >= 1 and config.device != 'cpu' \
            else 0.0
    if gpus_per_worker > 0 and gpus == 0:
        raise ClusterError(
            f'gpus_per_worker is {gpus_per_worker:g} but the Ray cluster has '
            'no GPU: set "gpus_per_worker": 0 to use its CPUs')
    if gpus_per_worker > 0 and config.device == 'cpu':
        raise ClusterError(f'gpus_per_worker is {gpus_per_worker:g} but '
                           'device is cpu: set one of them otherwise')
    threads = config.threads_per_worker
    largest = max((node['Resources'].get('CPU', 0) for node in ray.nodes()
                   if node.get('Alive')), default=0)
    if threads > largest:
        raise ClusterError(
            f'threads_per_worker is {threads} but no Ray node has more than '
            f'{largest:g} CPUs')
    if config.workers == 'auto':
        count = int(gpus // gpus_per_worker) if gpus_per_worker \
            else max(1, int(cpus // threads))
    else:
        count = config.workers
        if count * threads > cpus or count * gpus_per_worker > gpus:
            raise ClusterError(
                f'{count} workers need {count * threads} CPUs and '
                f'{count * gpus_per_worker:g} GPUs; the Ray cluster has '
                f'{cpus:g} and {gpus:g}')
    return dict(count=max(1, min(count, wanted)), num_cpus=threads,
                num_gpus=gpus_per_worker)


class _Driver:
    """Feeds the queue of units to free workers and collects results."""

    def __init__(self, ray, config, queue: deque, total_inputs: int,
                 result: BatchResult):
        self.ray, self.config, self.queue = ray, config, queue
        self.total_inputs, self.result = total_inputs, result
        self.segments_left: Dict[int, list] = {}
        for unit in queue:
            if unit.segment is not None:
                self.segments_left.setdefault(unit.number, []).append(unit)
        self.segments_done: Dict[int, list] = {}

    def run(self) -> None:
        ray = self.ray
        shape = _worker_shape(ray, self.config, len(self.queue))
        # On the head node, which lives as long as the cluster (as Ray
        # Train places its state actor); worker nodes may die.
        progress = ray.remote(num_cpus=0)(Progress).options(
            name='progress',
            resources={'node:__internal_head__': 0.001}).remote()
        worker_class = ray.remote(Worker).options(
            num_cpus=shape['num_cpus'], num_gpus=shape['num_gpus'],
            max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES,
            scheduling_strategy='SPREAD')
        workers = [worker_class.remote(self.config, index,
                                       shape['num_cpus'])
                   for index in range(shape['count'])]
        try:
            self._check_workers(workers)
            self._feed(workers, progress)
        except KeyboardInterrupt:
            for worker in workers:  # partial files stay for --resume
                ray.kill(worker, no_restart=True)
            raise

    def _check_workers(self, workers: list) -> None:
        """Every worker loaded its models and sees the output folder."""
        folder = Path(self.config.output)
        if folder.suffix.lower() == '.json':
            folder = folder.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f'cannot write to output folder {folder}: '
                              f'{exc.strerror or exc}') from None
        probe = folder / f'.pose-suite-probe-{secrets.token_hex(8)}'
        probe.write_text('the suite checks that its workers see this\n')
        try:
            answers = self.ray.get([worker.ready.remote(str(probe))
                                    for worker in workers])
        finally:
            probe.unlink(missing_ok=True)
        for answer in answers:
            if answer['error']:
                raise type(answer['error'])(
                    f'worker on node {answer["node"]}: {answer["error"]}')
            if not answer['sees_output']:
                raise OutputError(
                    f'the worker on node {answer["node"]} cannot see the '
                    f'output folder {folder}: put it on a filesystem that '
                    'every Ray node mounts at the same path')

    def _feed(self, workers: list, progress) -> None:
        ray = self.ray
        from tqdm import tqdm
        bar = tqdm(total=sum(unit.frames for unit in self.queue
                             if unit.stitch_of is None),
                   unit='frame', desc='frames', dynamic_ncols=True,
                   disable=self.config.quiet or not sys.stderr.isatty())
        free, pending = list(workers), {}
        try:
            while self.queue or pending:
                while free and self.queue:
                    unit, worker = self.queue.popleft(), free.pop()
                    call = worker.stitch if unit.stitch_of else \
                        worker.analyse
                    pending[call.remote(dataclasses.asdict(unit))] = \
                        (unit, worker)
                if not pending:
                    self._fail_all('no Ray worker is left (each died '
                                   f'{MAX_RESTARTS + 1} times)')
                    break
                done, _ = ray.wait(list(pending), num_returns=1,
                                   timeout=PROGRESS_INTERVAL_S)
                try:
                    bar.n = ray.get(progress.frames_done.remote())
                    bar.refresh()
                except ray.exceptions.RayError:
                    pass  # the bar only; results do not depend on it
                for ref in done:
                    unit, worker = pending.pop(ref)
                    try:
                        answer = ray.get(ref)
                    except ray.exceptions.ActorUnavailableError:
                        # Its node died and Ray has not yet declared the
                        # actor dead (about 14 s): the call goes again, to
                        # the actor Ray restarts elsewhere.
                        unit.unavailable += 1
                        if unit.unavailable * UNAVAILABLE_WAIT_S <= 300:
                            time.sleep(UNAVAILABLE_WAIT_S)
                            pending[worker.analyse.remote(
                                dataclasses.asdict(unit))] = (unit, worker)
                            continue
                        self._failed(unit, 'its Ray worker was unreachable '
                                     'for 5 minutes')
                        continue
                    except ray.exceptions.RayActorError as exc:
                        self._failed(unit, 'its Ray worker died '
                                     f'{MAX_TASK_RETRIES + 1} times while '
                                     f'analysing it ({one_line(exc)})')
                        continue  # that worker is gone for good
                    free.append(worker)
                    self._finished(unit, answer, bar)
        finally:
            bar.close()

    def _finished(self, unit: _Unit, answer: dict, bar) -> None:
        for message in answer.get('warnings', []):
            warnings.warn(message, SuiteWarning)
        if answer['status'] == 'skipped':
            self.result.skipped.append((unit.source, answer['reason']))
            return
        if answer['status'] == 'failed':
            self._failed(unit, answer['reason'])
            return
        if unit.segment is not None:
            self._segment_done(unit)
            return
        self.result.outputs.append(Path(answer['output']))
        self.result.frames += answer['frames']
        self.result.persons += answer['persons']
        if not self.config.quiet:
            retried = f', attempt {answer["attempts"]}' \
                if answer['attempts'] > 1 else ''
            bar.write(finished_line(
                unit.number, self.total_inputs, unit.source, answer,
                answer['output'],
                f' (node {answer["node"]}, worker {answer["worker"]}'
                f'{retried})'), file=sys.stdout)

    def _segment_done(self, unit: _Unit) -> None:
        """When the last segment of an input is in, stitching comes next,
        before any other input."""
        left = self.segments_left.get(unit.number)
        if left is None:
            return  # the input already failed
        left.remove(unit)
        self.segments_done.setdefault(unit.number, []).append(unit)
        if not left:
            done = sorted(self.segments_done.pop(unit.number),
                          key=lambda u: u.segment.start)
            del self.segments_left[unit.number]
            self.queue.appendleft(_Unit(
                f'{unit.number}.stitch', unit.number, unit.source,
                unit.result, unit.result, 0,
                stitch_of=[(u.segment, u.output) for u in done]))

    def _failed(self, unit: _Unit, reason: str) -> None:
        if unit.segment is not None:
            if self.segments_left.pop(unit.number, None) is None:
                return  # reported at its first failed segment
            self.segments_done.pop(unit.number, None)
            self.queue = deque(u for u in self.queue
                               if u.number != unit.number)
        self.result.failures.append((unit.source, reason))

    def _fail_all(self, reason: str) -> None:
        for number in sorted({unit.number for unit in self.queue}):
            unit = next(u for u in self.queue if u.number == number)
            self.result.failures.append((unit.source, reason))
        self.queue.clear()
