"""Safe checkpoint loading (pose_suite.models.checkpoints)."""
import os
import warnings

import numpy as np
import pytest
import torch

from pose_suite.errors import CheckpointError
from pose_suite.models.checkpoints import (expected_sha256_prefix,
                                           load_weights, safe_torch_load,
                                           verify_checkpoint_file)


class _Payload:
    """Pickles as a call to os.system: what a hostile .pth would carry."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize('zip_format', [True, False])
def test_code_in_a_pickle_is_refused_and_does_not_run(tmp_path, zip_format):
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(2)},
                'meta': {'x': _Payload(f'touch {marker}')}}, path,
               _use_new_zipfile_serialization=zip_format)
    with pytest.raises(CheckpointError) as error:
        safe_torch_load(path)
    assert 'posix.system' in str(error.value) or 'os.system' in str(
        error.value)
    assert 'could run code' in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize('zip_format', [True, False])
def test_numpy_objects_in_meta_are_allowed(tmp_path, zip_format):
    path = tmp_path / 'ok.pth'
    meta = {'seed': np.int64(7), 'best': np.float64(0.5),
            'mean': np.array([1.0, 2.0], dtype=np.float32),
            'dtype': np.dtype('float32')}
    torch.save({'meta': meta, 'state_dict': {'w': torch.ones(3)}}, path,
               _use_new_zipfile_serialization=zip_format)
    loaded = safe_torch_load(path)
    assert loaded['meta']['seed'] == 7
    assert loaded['meta']['best'] == 0.5
    np.testing.assert_array_equal(loaded['meta']['mean'], [1.0, 2.0])
    assert torch.equal(loaded['state_dict']['w'], torch.ones(3))


def test_load_weights_requires_every_parameter(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    path = tmp_path / 'partial.pth'
    state = model.state_dict()
    del state['1.weight']
    torch.save({'state_dict': state}, path)
    with pytest.raises(CheckpointError, match='1 weights missing.*1.weight'):
        load_weights(model, path)


def test_load_weights_strips_module_prefix_and_warns_on_extra(tmp_path):
    source = torch.nn.Linear(2, 2)
    target = torch.nn.Linear(2, 2)
    state = {f'module.{k}': v for k, v in source.state_dict().items()}
    state['module.extra'] = torch.zeros(1)
    path = tmp_path / 'ddp.pth'
    torch.save({'state_dict': state, 'meta': {'epoch': 3}}, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert load_weights(target, path) == {'epoch': 3}
    assert any('extra' in str(w.message) for w in caught)
    assert torch.equal(target.weight, source.weight)


def test_sha256_prefix_from_openmmlab_names():
    assert expected_sha256_prefix(
        'hrnet_w48_coco_wholebody_384x288_dark-f5726563_20200918.pth') \
        == 'f5726563'
    assert expected_sha256_prefix(
        'rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth') == '235e8209'
    assert expected_sha256_prefix('my_model.pth') is None


def test_verify_checks_prefix(tmp_path):
    good = tmp_path / 'x.pth'
    good.write_bytes(b'123')
    digest = verify_checkpoint_file(good)  # no hash in the name: accepted
    named = tmp_path / f'x-{digest[:8]}.pth'
    good.rename(named)
    assert verify_checkpoint_file(named) == digest
    bad = tmp_path / 'x-deadbeef.pth'
    named.rename(bad)
    with pytest.raises(CheckpointError, match='fails its checksum'):
        verify_checkpoint_file(bad)
    with pytest.raises(CheckpointError, match='not a file'):
        verify_checkpoint_file(tmp_path)
