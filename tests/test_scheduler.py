"""The batch scheduler (:mod:`pose_suite.batch.scheduler`) and the worker sizing
of :mod:`pose_suite.batch.ray_executor`, without Ray or models: the bookkeeping a
Ray run relies on, tested by playing the answers a cluster gives."""
import types
from pathlib import Path

import pytest

from pose_suite.batch.local import BatchResult
from pose_suite.batch.ray_cluster import worker_shape
from pose_suite.batch.scheduler import MAX_ATTEMPTS, Scheduler, Unit
from pose_suite.batch.segments import Segment
from pose_suite.errors import ClusterError, DeviceError


def _input(number: int, frames: int) -> Unit:
    path = Path(f'/out/clip{number}.mp4.json')
    return Unit(str(number), 'input', number, f'/in/clip{number}.mp4', path,
                path, frames)


def _segments(number: int, cuts) -> list:
    result = Path(f'/out/long{number}.mp4.json')
    return [Unit(f'{number}.{index + 1}', 'segment', number,
                 f'/in/long{number}.mp4',
                 Path(f'/out/.long{number}.segment-{index + 1}.json'),
                 result, 10, Segment(start, stop))
            for index, (start, stop) in enumerate(cuts)]


DONE = dict(status='done', frames=5, persons=7)


def test_longest_input_first_and_all_written():
    result = BatchResult()
    scheduler = Scheduler([_input(1, 5), _input(2, 50), _input(3, 20)],
                          result)
    order = []
    while scheduler.has_waiting():
        unit = scheduler.take()
        order.append(unit.number)
        assert scheduler.answered(unit, DONE) == 'written'
    assert order == [2, 3, 1]
    assert scheduler.finished
    assert result.outputs == [Path('/out/clip2.mp4.json'),
                              Path('/out/clip3.mp4.json'),
                              Path('/out/clip1.mp4.json')]
    assert (result.frames, result.persons) == (15, 21)


def test_a_dead_worker_costs_the_unit_an_attempt_and_it_resumes():
    result = BatchResult()
    scheduler = Scheduler([_input(1, 5)], result)
    unit = scheduler.take()
    assert (unit.attempts, unit.resume_partial) == (1, False)
    scheduler.worker_died(unit, 'SIGKILL')
    again = scheduler.take()
    assert again is unit
    assert (again.attempts, again.resume_partial) == (2, True)
    assert again.message()['resume_partial'] is True
    assert scheduler.answered(again, DONE) == 'written'
    assert not result.failures


def test_attempts_are_counted_per_unit_not_per_worker():
    """Workers die on preemptible machines: many deaths over a batch do not
    fail an input whose own analysis was cut off fewer times."""
    result = BatchResult()
    units = [_input(number, 5) for number in range(1, 6)]
    scheduler = Scheduler(units, result)
    for _ in units:  # every input loses one worker, then is written
        unit = scheduler.take()
        scheduler.worker_died(unit, 'node lost')
        unit = scheduler.take()
        assert scheduler.answered(unit, DONE) == 'written'
    assert len(result.outputs) == 5 and not result.failures


def test_an_input_fails_after_its_last_attempt_with_a_true_count():
    result = BatchResult()
    scheduler = Scheduler([_input(1, 5), _input(2, 5)], result)
    first = scheduler.take()
    for _ in range(MAX_ATTEMPTS - 1):
        scheduler.worker_died(first, 'OOM')
        assert scheduler.take() is first
    scheduler.worker_died(first, 'OOM')
    assert result.failures == [(first.source, f'its Ray worker died '
                                f'{MAX_ATTEMPTS} times while analysing it '
                                '(OOM)')]
    other = scheduler.take()
    assert other.number == 2
    scheduler.answered(other, DONE)
    assert scheduler.finished


def test_a_call_that_never_reached_a_worker_is_free():
    result = BatchResult()
    scheduler = Scheduler([_input(1, 5)], result)
    for _ in range(MAX_ATTEMPTS + 5):
        unit = scheduler.take()
        scheduler.not_started(unit)
    unit = scheduler.take()
    assert unit.attempts == 1
    assert scheduler.answered(unit, DONE) == 'written'


def test_unreachable_worker_is_retried_up_to_the_limit():
    result = BatchResult()
    scheduler = Scheduler([_input(1, 5)], result)
    for _ in range(3):
        assert scheduler.unreachable(scheduler.take(), limit=3)
    assert not scheduler.unreachable(scheduler.take(), limit=3)
    assert result.failures[0][1].startswith('its Ray worker was unreachable')
    assert scheduler.finished


def test_segments_then_stitching_before_other_inputs():
    result = BatchResult()
    scheduler = Scheduler(_segments(1, [(0, 8), (8, 16), (16, None)])
                          + [_input(2, 5)], result)
    segments = [scheduler.take() for _ in range(3)]
    assert {unit.kind for unit in segments} == {'segment'}
    # In any order; the stitching comes when the last is in.
    for unit in (segments[2], segments[0]):
        assert scheduler.answered(unit, DONE) is None
    assert scheduler.answered(segments[1], DONE) is None
    stitch = scheduler.take()
    assert stitch.kind == 'stitch' and stitch.unit_id == '1.stitch'
    assert [segment for segment, _ in stitch.stitch_of] == [
        {'start': 0, 'stop': 8}, {'start': 8, 'stop': 16},
        {'start': 16, 'stop': None}]
    assert scheduler.answered(stitch, dict(DONE, frames=24)) == 'written'
    assert result.outputs == [Path('/out/long1.mp4.json')]
    # The segments' frames, not counted twice.
    assert (result.frames, result.persons) == (15, 21)


def test_frames_of_kept_segments_are_not_counted():
    """A resumed run that kept a finished segment analysed only the
    others' frames."""
    result = BatchResult()
    scheduler = Scheduler(_segments(1, [(0, 8), (8, None)]), result)
    first, second = scheduler.take(), scheduler.take()
    scheduler.answered(first, dict(status='up to date', frames=0))
    scheduler.answered(second, DONE)
    stitch = scheduler.take()
    assert scheduler.answered(stitch, dict(DONE, frames=16)) == 'written'
    assert (result.frames, result.persons) == (5, 7)
    assert '1 input(s) done: 5 frame(s), 7 person(s)' in result.summary()


def test_a_retried_stitch_is_still_a_stitch():
    result = BatchResult()
    scheduler = Scheduler(_segments(1, [(0, 8), (8, None)]), result)
    for unit in [scheduler.take(), scheduler.take()]:
        scheduler.answered(unit, DONE)
    stitch = scheduler.take()
    scheduler.worker_died(stitch, 'node lost')
    again = scheduler.take()
    assert again.kind == 'stitch' and again.message()['kind'] == 'stitch'
    assert scheduler.answered(again, dict(DONE, frames=24)) == 'written'


def test_a_failed_segment_fails_its_input_once_and_drops_the_rest():
    result = BatchResult()
    scheduler = Scheduler(_segments(1, [(0, 8), (8, 16), (16, None)])
                          + [_input(2, 5)], result)
    first, second = scheduler.take(), scheduler.take()
    scheduler.answered(first, dict(status='failed', reason='corrupt'))
    assert scheduler.answered(second, DONE) is None  # ignored
    left = [scheduler.take()]
    assert [unit.number for unit in left] == [2]
    scheduler.answered(left[0], DONE)
    assert result.failures == [('/in/long1.mp4', 'corrupt')]
    assert scheduler.finished


def test_a_segment_that_finds_the_whole_result_up_to_date_ends_its_input():
    result = BatchResult()
    scheduler = Scheduler(_segments(1, [(0, 8), (8, None)]), result)
    first, second = scheduler.take(), scheduler.take()
    assert scheduler.answered(first, dict(status='input up to date')) \
        is None
    # One unit writes the exports the result lacks (no two at once).
    kept = scheduler.take()
    assert (kept.kind, kept.kept) == ('stitch', True)
    assert [segment for segment, _ in kept.stitch_of] == [
        {'start': 0, 'stop': 8}, {'start': 8, 'stop': None}]
    assert not scheduler.has_waiting()
    assert scheduler.answered(second, dict(status='input up to date')) \
        is None  # ignored
    assert scheduler.answered(kept, dict(status='up to date')) == 'kept'
    assert result.up_to_date == [Path('/out/long1.mp4.json')]
    assert not result.outputs and result.frames == 0
    assert scheduler.finished and not scheduler.has_waiting()


def test_up_to_date_and_skipped_answers():
    result = BatchResult()
    scheduler = Scheduler([_input(1, 5), _input(2, 5)], result)
    assert scheduler.answered(scheduler.take(),
                              dict(status='up to date')) == 'kept'
    assert scheduler.answered(scheduler.take(), dict(
        status='skipped', reason='a text file')) is None
    assert len(result.up_to_date) == 1 and not result.outputs
    assert result.skipped == [('/in/clip2.mp4', 'a text file')]
    assert '0 input(s) done, 1 up to date' in result.summary()


def test_fail_all_names_every_input_once():
    result = BatchResult()
    scheduler = Scheduler(_segments(1, [(0, 8), (8, None)])
                          + [_input(2, 5)], result)
    scheduler.take()
    scheduler.fail_all('no Ray worker is left')
    assert sorted(result.failures) == [
        ('/in/clip2.mp4', 'no Ray worker is left'),
        ('/in/long1.mp4', 'no Ray worker is left')]
    assert scheduler.finished


def _config(**values):
    fields = dict(workers='auto', threads_per_worker=1,
                  gpus_per_worker='auto', device='cpu')
    return types.SimpleNamespace(**{**fields, **values})


def test_workers_auto_fit_node_by_node():
    """Two nodes of 3 CPUs with 2 threads a worker hold 2 workers, not
    6 / 2 = 3 (a worker's CPUs are all on one node)."""
    nodes = [{'CPU': 3.0}, {'CPU': 3.0}]
    shape = worker_shape(nodes, _config(threads_per_worker=2), wanted=10)
    assert shape == dict(count=2, num_cpus=2, num_gpus=0.0)
    with pytest.raises(ClusterError, match='3 workers of 2 CPU.* fit'):
        worker_shape(nodes, _config(workers=3, threads_per_worker=2), 10)
    assert worker_shape(nodes, _config(workers=2, threads_per_worker=2),
                        10)['count'] == 2
    with pytest.raises(ClusterError, match='no Ray node can hold'):
        worker_shape(nodes, _config(threads_per_worker=4), 10)


def test_workers_are_no_more_than_the_units():
    assert worker_shape([{'CPU': 8.0}], _config(), wanted=3)['count'] == 3


def test_gpu_workers_fit_by_gpus_and_cpus_of_each_node():
    nodes = [{'CPU': 8.0, 'GPU': 1.0}, {'CPU': 8.0, 'GPU': 2.0}]
    shape = worker_shape(nodes, _config(device='auto'), wanted=10)
    assert shape == dict(count=3, num_cpus=1, num_gpus=1.0)
    assert worker_shape(nodes, _config(device='cuda', gpus_per_worker=0.5),
                        10)['count'] == 6
    # CPUs bound too: one CPU on the GPU node leaves room for one worker.
    assert worker_shape([{'CPU': 1.0, 'GPU': 2.0}], _config(
        device='auto', gpus_per_worker=0.5), 10)['count'] == 1


def test_cuda_on_a_cluster_without_gpus_is_refused():
    with pytest.raises(DeviceError, match='device is cuda .* no GPU'):
        worker_shape([{'CPU': 4.0}], _config(device='cuda',
                                             gpus_per_worker=0), 10)
    with pytest.raises(ClusterError, match='gpus_per_worker is 1 .* no GPU'):
        worker_shape([{'CPU': 4.0}], _config(gpus_per_worker=1.0), 10)


@pytest.mark.parametrize('fraction, per_gpu', [
    (0.2, 5), (0.1, 10), (0.25, 4), (1 / 3, 3), (0.3, 3), (0.5, 2), (1, 1)])
def test_fractional_gpus_fit_as_ray_counts_them(fraction, per_gpu):
    """Ray fits five workers of 0.2 GPU on one GPU (it counts fractions to
    1e-4), though 1 // 0.2 == 4.0 in floats."""
    nodes = [{'CPU': 64.0, 'GPU': 1.0}, {'CPU': 64.0, 'GPU': 2.0}]
    config = _config(device='cuda', gpus_per_worker=fraction)
    assert worker_shape(nodes, config, 100)['count'] == 3 * per_gpu
    assert worker_shape(nodes, _config(device='cuda', gpus_per_worker=fraction,
                                       workers=3 * per_gpu), 100)['count'] \
        == 3 * per_gpu
    with pytest.raises(ClusterError, match='do not fit'):
        worker_shape(nodes, _config(device='cuda', gpus_per_worker=fraction,
                                    workers=3 * per_gpu + 1), 100)


@pytest.mark.parametrize('values, words', [
    ({'device': 'cuda', 'gpus_per_worker': 0}, 'gpus_per_worker is 0'),
    ({'device': 'cuda:0', 'gpus_per_worker': 0.0}, 'gpus_per_worker is 0'),
    ({'device': 'cuda:1'}, 'device cuda:1 with executor ray.*cuda:0'),
    ({'device': 'cuda:1', 'gpus_per_worker': 1}, 'device cuda:1 with'),
])
def test_cuda_settings_ray_cannot_honour_are_refused_at_the_edge(
        values, words):
    """Refused when the config is read, not in every worker later: Ray
    hides the other GPUs from a worker (its own is cuda:0), and a worker
    given no GPU cannot run on one."""
    from pose_suite.config import build_config
    from pose_suite.errors import ConfigError
    with pytest.raises(ConfigError, match=words):
        build_config({'executor': 'ray', **values})
    for fine in ({**values, 'executor': 'local'},
                 {'executor': 'ray', 'device': 'cuda'},
                 {'executor': 'ray', 'device': 'cuda:0',
                  'gpus_per_worker': 0.5},
                 {'executor': 'ray', 'device': 'cpu', 'gpus_per_worker': 0}):
        build_config(fine)


def test_each_inputs_settings_go_with_its_units_to_analyse_input(tmp_path):
    """A list line's range travels in the Ray units (segments and their
    stitching too) to the worker's ``analyse_input(settings=...)``."""
    import shutil

    from conftest import data_file

    from pose_suite.batch.ray_executor import _plan
    from pose_suite.batch.ray_worker import Worker
    from pose_suite.media.inputs import expand_inputs
    for name in ('a.mp4', 'b.mp4'):
        shutil.copy(data_file('videos/street_5frames.mp4'), tmp_path / name)
    listing = tmp_path / 'list.txt'
    listing.write_text('a.mp4 0.3-0.9\nb.mp4\n')
    inputs = expand_inputs(listing)
    from pose_suite.config import build_config
    config = build_config({})
    units = _plan(config, inputs, inputs.output_files(tmp_path / 'out'),
                  BatchResult())
    cut = {'time_range': (0.3, 0.9), 'frame_range': None}
    assert [unit.settings for unit in units] == [cut, {}]
    asked = []

    def analyse_input(*args, **options):
        asked.append(options['settings'])
        return types.SimpleNamespace(status='done', output=args[1],
                                     frames=2, persons=0, frames_kept=0,
                                     exports=())
    worker = types.SimpleNamespace(service=types.SimpleNamespace(
        analyse_input=analyse_input))
    for unit in units:
        Worker._analyse(worker, unit.message(), False, {}, None)
    assert asked == [cut, {}]
    # Cut into segments (1 s each of a 6.7 s video): every one carries it.
    shutil.copy(data_file('videos/no_person_168frames.mp4'),
                tmp_path / 'long.mp4')
    listing.write_text('long.mp4 1-5\n')
    inputs = expand_inputs(listing)
    units = _plan(build_config({'executor': 'ray', 'segment_s': 1.0}),
                  inputs, inputs.output_files(tmp_path / 'out'),
                  BatchResult())
    assert len(units) > 1 and {unit.kind for unit in units} == {'segment'}
    assert all(unit.settings == {'time_range': (1.0, 5.0),
                                 'frame_range': None} for unit in units)
    segments = _segments(1, [(0, 10), (10, None)])
    for unit in segments:
        unit.settings = cut
    scheduler = Scheduler(segments, BatchResult())
    while scheduler.has_waiting():
        unit = scheduler.take()
        assert unit.message()['settings'] == cut, unit.kind
        scheduler.answered(unit, DONE)
    assert unit.kind == 'stitch'
