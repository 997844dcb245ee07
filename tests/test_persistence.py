"""Model files: what loads and what is refused (without unpickling anything)."""

import os
import pickle

import pytest
import torch

from acrl import A2C
from acrl.algorithms.registry import load_model
from acrl.errors import UserError


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "cartpole.acrl"
    A2C("MlpPolicy", "CartPole-v1", n_envs=2, seed=0).save(path)
    return path


def test_load_model_dispatches_on_algorithm(saved):
    assert isinstance(load_model(saved), A2C)
    assert isinstance(load_model(saved.parent / "cartpole"), A2C)


def test_truncated_file_is_refused(saved, tmp_path):
    data = saved.read_bytes()
    broken = tmp_path / "broken.acrl"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="not an acrl model file"):
        A2C.load(broken)


def test_pickle_payload_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.acrl"
    torch.save({"x": Evil()}, path)
    with pytest.raises(UserError, match="not an acrl model file"):
        A2C.load(path)
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(UserError, match="not an acrl model file"):
        A2C.load(path)
    assert not marker.exists()


def test_plain_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(UserError, match="no acrl header"):
        A2C.load(path)


def test_damaged_metadata_is_refused(saved, tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from acrl.run.model_file import digest

    with safe_open(str(saved), framework="pt") as fh:
        header = fh.metadata()
    meta = json.loads(header["meta"])
    del meta["observation_space"]
    header["meta"] = json.dumps(meta)
    tensors = load_file(str(saved))
    header["digest"] = digest(header, tensors)  # signed again: the metadata check itself
    broken = tmp_path / "no-space.acrl"
    save_file(tensors, str(broken), metadata=header)
    with pytest.raises(UserError, match="cannot rebuild the model"):
        A2C.load(broken)


def test_loading_leaves_the_callers_random_state_alone(saved):
    torch.manual_seed(123)
    A2C.load(saved)
    assert torch.initial_seed() == 123


def test_save_is_atomic_and_replaces(saved, tmp_path):
    model = A2C.load(saved)
    target = tmp_path / "m.acrl"
    model.save(target)
    first = target.read_bytes()
    model.learn(100)
    model.save(target)
    assert target.read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.acrl"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
