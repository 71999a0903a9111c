"""``executor: ray``: the inputs of a batch shared among Ray actors.

Each worker is an actor that loads the two models once and analyses whole
inputs (or segments of long videos, :mod:`pose_suite.batch.segments`) with the
same ``PoseAnalyser.analyse_input`` as a local run, so results are the same
file for file; only ``meta.run`` says where and how they were made. The
driver (this process) feeds free workers with ``ray.wait``; what to send
and what each answer means is :class:`pose_suite.batch.scheduler.Scheduler`'s,
which has no Ray in it. This module submits by unit kind and translates
Ray's exceptions; connecting and sizing the workers to what fits on each
node is :mod:`pose_suite.batch.ray_cluster`'s.

Failures: a worker process or node that dies is restarted by Ray for as
long as the batch runs (``max_restarts=-1``), and the scheduler sends the
unit it was running again, resuming the partial file the dead attempt left;
attempts are counted per unit. A worker that cannot be (re)started within
:data:`WORKER_START_TIMEOUT_S` is given up. A user error in an input
(corrupt, not media) is an answer, not an exception, so it is never
retried. Ctrl-C or SIGTERM kills the workers; partial files stay for
``--resume``.

Ray is imported only by this module and :mod:`.ray_cluster`, and only
when ``executor: ray`` is used; the actors are in :mod:`.ray_worker`.
"""
import os
import secrets
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional

from pose_suite.batch.local import BatchResult, finished_line
from pose_suite.batch.ray_cluster import connect, import_ray, worker_shape
from pose_suite.batch.ray_worker import PROGRESS_INTERVAL_S, Progress, Worker
from pose_suite.batch.scheduler import Scheduler, Unit
from pose_suite.batch.segments import segment_file, segments_for
from pose_suite.config import apply_overrides
from pose_suite.errors import ClusterError, OutputError, SuiteWarning
from pose_suite.media.inputs import Inputs
from pose_suite.media.sources import open_source
from pose_suite.outputs.naming import output_files as plan_output_files
from pose_suite.service.analyser import InputResult

#: Seconds a worker may take to load its models (first start or restart)
#: before the batch gives it up.
WORKER_START_TIMEOUT_S = 300.0
#: Seconds between calls to a worker whose node stopped answering, and how
#: many such calls a unit gets (5 minutes in all).
UNAVAILABLE_WAIT_S = 2.0
UNAVAILABLE_LIMIT = 150
#: Ray namespace prefix; the run's progress actor is named ``progress``.
NAMESPACE_PREFIX = 'pose-suite-'


def run_on_ray(config, inputs: Inputs) -> BatchResult:
    """Analyse ``inputs`` on Ray workers (see the module's docstring).

    Raises:
        ClusterError, DeviceError, OutputError: before any input is
        analysed, with nothing written.
        KeyboardInterrupt: after the workers were stopped; partial files
        are kept. Its ``ray_workers_started`` says whether any worker had
        been started (not when interrupted while joining the cluster).
    """
    if config.ray_address == '':
        # Ray's control plane runs code for whoever reaches it: a private
        # Ray gets a token of its own (read as Ray is imported).
        os.environ['RAY_AUTH_MODE'] = 'token'
        os.environ['RAY_AUTH_TOKEN'] = secrets.token_hex(32)
        # Its node is this machine, as 127.0.0.1: else Ray looks for the
        # address the machine goes out by (a UDP socket towards 8.8.8.8,
        # and a warning of its C++ core on stderr when there is no route).
        # Read as Ray is imported, by its processes too.
        os.environ['RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'] = '0'
    ray = import_ray()
    started = time.perf_counter()
    output_files = plan_output_files(inputs, config.output,
                                     config.export_formats,
                                     config.visualize_output)
    result = BatchResult(skipped=[(str(path), reason)
                                  for path, reason in inputs.skipped])
    scheduler = Scheduler(_plan(config, inputs, output_files, result),
                          result)
    namespace = NAMESPACE_PREFIX + secrets.token_hex(4)
    driver = None
    try:
        connect(ray, config, namespace)
        if not scheduler.finished:
            driver = _Driver(ray, config, scheduler, len(inputs.sources))
            driver.run()
    except KeyboardInterrupt as exc:
        exc.ray_workers_started = bool(driver and driver.workers)
        raise
    finally:
        ray.shutdown()
    result.seconds = time.perf_counter() - started
    return result


def _plan(config, inputs: Inputs, output_files: List[Path],
          result: BatchResult,
          settings_for: Optional[Callable[[str], Optional[dict]]] = None
          ) -> List[Unit]:
    """The units of work. An input that cannot be opened, or whose range
    selects none of its frames, is that input's failure (or skip) now, as
    in a local run, and goes to no worker.

    Args:
        settings_for: the config keys that differ for an input (a list
            file's range), by its path; None: the inputs'. A video is cut
            (:func:`~pose_suite.batch.segments.segments_for`) with its
            own settings.
    """
    units = []
    for number, (path, output) in enumerate(
            zip(inputs.sources, output_files), 1):
        settings = (settings_for or inputs.settings_for)(path)
        try:
            source = open_source(path)
            segments = segments_for(apply_overrides(config, settings)
                                    if settings else config, source)
        except Exception as exc:  # noqa: BLE001  (see problem_of)
            result.add_problem(path, exc)
            continue
        frames = max(source.frame_count or 1, 1)
        if len(segments) < 2:
            units.append(Unit(f'{number}', 'input', number, str(path),
                              output, output, frames, settings=settings))
            continue
        for index, segment in enumerate(segments):
            stop = segment.stop if segment.stop is not None else frames
            units.append(Unit(
                f'{number}.{index + 1}', 'segment', number, str(path),
                segment_file(output, index, len(segments)), output,
                max(stop - segment.start, 1), segment, settings=settings))
    return units


def say_once(said: set, number: int, messages) -> None:
    """Warn each of the workers' ``messages`` about input ``number`` once:
    its segments repeat what is said of the whole input (a range past its
    end). ``said``: the ``(number, message)`` pairs said so far."""
    for message in messages:
        if (number, message) not in said:
            said.add((number, message))
            warnings.warn(message, SuiteWarning)


class _Driver:
    """Sends the scheduler's units to free workers and tells it the
    answers, translated from Ray's exceptions."""

    def __init__(self, ray, config, scheduler: Scheduler,
                 total_inputs: int):
        self.ray, self.config, self.scheduler = ray, config, scheduler
        self.total_inputs = total_inputs
        self.workers: list = []  # the actors, once started
        self.said: set = set()  # (input number, warning) said

    def run(self) -> None:
        ray = self.ray
        nodes = [node['Resources'] for node in ray.nodes()
                 if node.get('Alive')]
        shape = worker_shape(nodes, self.config,
                             len(self.scheduler.queue))
        # On the head node, which lives as long as the cluster (as Ray
        # Train places its state actor); worker nodes may die.
        self.progress = ray.remote(num_cpus=0)(Progress).options(
            name='progress',
            resources={'node:__internal_head__': 0.001}).remote()
        # Restarted for as long as the batch runs: attempts are counted per
        # unit by the scheduler, so that workers on preemptible machines
        # do not die out one by one. Ray retries nothing itself.
        worker_class = ray.remote(Worker).options(
            num_cpus=shape['num_cpus'], num_gpus=shape['num_gpus'],
            max_restarts=-1, max_task_retries=0,
            scheduling_strategy='SPREAD')
        self.workers = [worker_class.remote(self.config, index,
                                            shape['num_cpus'])
                        for index in range(shape['count'])]
        self.shape = shape
        try:
            self._check_workers()
            self._feed()
        except KeyboardInterrupt:
            self._stop_workers()  # partial files stay for --resume
            raise

    def _stop_workers(self) -> None:
        for worker in self.workers:
            self.ray.kill(worker, no_restart=True)

    def _check_workers(self) -> None:
        """Every worker loaded its models and sees the output folder, within
        :data:`WORKER_START_TIMEOUT_S`."""
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
        calls = [worker.ready.remote(str(probe)) for worker in self.workers]
        try:
            ready, _ = self.ray.wait(calls, num_returns=len(calls),
                                     timeout=WORKER_START_TIMEOUT_S)
            if len(ready) < len(calls):
                self._stop_workers()
                raise ClusterError(
                    f'{len(calls) - len(ready)} of {len(calls)} Ray workers '
                    f'({self.shape["num_cpus"]} CPU(s) '
                    f'{self.shape["num_gpus"]:g} GPU(s) each) did not start '
                    f'within {WORKER_START_TIMEOUT_S:.0f} s: the cluster has '
                    'no room for them, or loading the models hangs')
            answers = [self._get(call) for call in calls]
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

    def _get(self, ref):
        """``ray.get``, with a worker that died while starting reported as
        one line."""
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            raise ClusterError(f'a Ray worker died while it started: '
                               f'{_first_words(exc)}') from None

    def _feed(self) -> None:
        ray, scheduler = self.ray, self.scheduler
        from tqdm import tqdm
        bar = tqdm(total=sum(unit.frames for unit in scheduler.queue),
                   unit='frame', desc='frames', dynamic_ncols=True,
                   disable=self.config.quiet or not sys.stderr.isatty())
        free, pending = list(self.workers), {}
        sent_at: Dict = {}
        try:
            while pending or not scheduler.finished:
                while free and scheduler.has_waiting():
                    unit, worker = scheduler.take(), free.pop()
                    call = worker.stitch if unit.kind == 'stitch' \
                        else worker.analyse
                    ref = call.remote(unit.message())
                    pending[ref], sent_at[ref] = (unit, worker), \
                        time.monotonic()
                if not pending:
                    scheduler.fail_all('no Ray worker is left (each died or '
                                       'could not be started again)')
                    break
                done, _ = ray.wait(list(pending), num_returns=1,
                                   timeout=PROGRESS_INTERVAL_S)
                status = self._progress_status(bar)
                for ref in done:
                    unit, worker = pending.pop(ref)
                    sent_at.pop(ref)
                    if self._answer(ref, unit, worker, status, bar):
                        free.append(worker)
                for ref in [ref for ref, at in sent_at.items()
                            if status is not None and
                            time.monotonic() - at > WORKER_START_TIMEOUT_S
                            and not _started(status, pending[ref][0])]:
                    # Sent to a worker that never came back to life.
                    unit, worker = pending.pop(ref)
                    sent_at.pop(ref)
                    ray.kill(worker, no_restart=True)
                    scheduler.not_started(unit)
        finally:
            bar.close()

    def _progress_status(self, bar) -> Optional[dict]:
        """The progress actor's status (None when it cannot be read just
        now); moves the bar."""
        try:
            status = self.ray.get(self.progress.status.remote())
        except self.ray.exceptions.RayError:
            return None
        bar.n = sum(entry['frames'] for entry in status.values())
        bar.refresh()
        return status

    def _answer(self, ref, unit: Unit, worker, status: dict, bar) -> bool:
        """Give the scheduler what ``ref`` brought; returns whether the
        worker can take more."""
        ray, scheduler = self.ray, self.scheduler
        try:
            answer = ray.get(ref)
        except ray.exceptions.ActorUnavailableError as exc:
            # The worker is restarting (its process died), or its node
            # stopped answering and Ray has not yet declared it dead (about
            # 14 s): the unit goes again, to the actor Ray restarts. An
            # attempt that had begun counts; a call that never reached it
            # does not.
            if _started(status, unit):
                scheduler.worker_died(unit, _first_words(exc))
            elif scheduler.unreachable(unit, UNAVAILABLE_LIMIT):
                time.sleep(UNAVAILABLE_WAIT_S)
            return True
        except ray.exceptions.RayActorError as exc:
            if _started(status, unit):
                scheduler.worker_died(unit, _first_words(exc))
                return True  # Ray restarts it
            scheduler.not_started(unit)
            return False  # dead for good: never reached
        except ray.exceptions.RayError as exc:  # a bug of ours, say
            scheduler.answered(unit, dict(status='failed', reason=(
                f'its Ray worker failed: {_first_words(exc)}')))
            return True
        if answer['status'] == 'worker broken':
            # A restarted worker could not load its models again.
            warnings.warn(f'a Ray worker on node {answer["node"]} is given '
                          f'up: {answer["reason"]}', SuiteWarning)
            ray.kill(worker, no_restart=True)
            scheduler.not_started(unit)
            return False
        say_once(self.said, unit.number, answer.get('warnings', []))
        ended = scheduler.answered(unit, answer)
        if ended and not self.config.quiet:
            retried = f', attempt {answer["attempts"]}' \
                if answer.get('attempts', 1) > 1 else ''
            done = InputResult(unit.result, 'up to date' if ended == 'kept'
                               else 'done', answer.get('frames', 0),
                               answer.get('persons', 0),
                               frames_kept=answer.get('frames_kept', 0),
                               exports=tuple(answer.get('exports', ())))
            bar.write(finished_line(
                unit.number, self.total_inputs, unit.source, done,
                f' (node {answer["node"]}, worker {answer["worker"]}'
                f'{retried})'), file=sys.stdout)
        return True


def _started(status: Optional[dict], unit: Unit) -> bool:
    """Whether a worker began ``unit``'s current attempt (the progress
    actor's record; when it could not be read, taken as begun, so that an
    attempt is never given for free twice)."""
    if status is None:
        return True
    return status.get(unit.unit_id, {}).get('attempts', 0) >= unit.attempts


def _first_words(exc: BaseException) -> str:
    """Ray's exception texts run to pages: their first line."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
