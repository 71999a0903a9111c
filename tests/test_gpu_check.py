"""benchmarks/gpu_check.py's table: each row carries its own verdict, and
the fast precision's boxes are bounded (``make gpu-check``; its dry run
``make gpu-check DEVICE=cpu`` runs the whole check)."""
import importlib.util

from conftest import ROOT


def gpu_check():
    spec = importlib.util.spec_from_file_location(
        'gpu_check', ROOT / 'benchmarks' / 'gpu_check.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(exact=None, fast=None):
    check = gpu_check()
    good = {'box': 0.0, 'keypoint': 0.0, 'shift_median': 0.0,
            'unmatched': 0}
    compared = {'exact': {**good, **(exact or {})},
                'fast': {**good, **(fast or {})}}
    text, ok = check.render(['device: cuda'], (9, 0, 0, '9 passed'),
                            'random weights', 4, compared, {}, 2, 'fp16', 60)
    rows = {line.split(' | ')[0].strip('| '): line.rsplit('|', 2)[-2].strip()
            for line in text.splitlines() if line.startswith('| device')}
    return rows, ok


def test_keypoints_failing_fail_their_own_row_only():
    rows, ok = table(exact={'keypoint': 3.0})
    assert rows['device fp32 vs CPU fp32: boxes'] == 'pass'
    assert rows['device fp32 vs CPU fp32: keypoints'] == 'FAIL'
    assert not ok


def test_boxes_failing_fail_their_row():
    rows, ok = table(exact={'box': 0.7})
    assert rows['device fp32 vs CPU fp32: boxes'] == 'FAIL'
    assert rows['device fp32 vs CPU fp32: keypoints'] == 'pass'
    assert not ok


def test_fast_detector_is_bounded():
    rows, ok = table(fast={'box': 5.0, 'keypoint': 40.0})
    assert rows['device fp16 vs CPU fp32: boxes'] == 'FAIL'
    assert rows['device fp16 vs CPU fp32: keypoints'] == 'reported'
    assert not ok
    rows, ok = table(fast={'unmatched': 1})
    assert not ok
    assert table(fast={'box': 1.0, 'keypoint': 40.0})[1]
