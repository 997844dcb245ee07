"""Model files are checked before they are used: a digest over header and tensors, metadata
bounded and checked against the tensor shapes before any network is built, weights refused
when of another dtype or not finite, and RNG states tried before a resume restores them."""

from __future__ import annotations

import json
import random
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from acrl import A2C
from acrl.algorithms import base
from acrl.cli import main
from acrl.errors import UserError
from acrl.run.model_file import digest, read_model
from acrl.run.run_files import rng_state, rng_states


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A small trained CartPole model (optimizer state, normalization, RNG states)."""
    path = tmp_path_factory.mktemp("integrity") / "cartpole.acrl"
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=2, seed=0, normalize_obs=True)
    model.learn(250)
    model.save(path)
    return path


def header_size(data: bytes) -> int:
    """Bytes before the tensor payload: safetensors' length prefix and JSON header."""
    return 8 + struct.unpack("<Q", data[:8])[0]


def flipped(data: bytes, position: int, bit: int) -> bytes:
    out = bytearray(data)
    out[position] ^= 1 << bit
    return bytes(out)


def rewrite(source: Path, target: Path, edit_meta=None, edit_tensors=None, meta_text=None):
    """``source`` with its metadata or tensors edited, then signed again, so that only the
    checks after the digest can refuse it."""
    tensors = load_file(str(source))
    with safe_open(str(source), framework="pt") as fh:
        header = dict(fh.metadata())
    meta = json.loads(header["meta"])
    if edit_meta is not None:
        edit_meta(meta)
    if edit_tensors is not None:
        edit_tensors(tensors)
    header["meta"] = meta_text(header["meta"]) if meta_text else json.dumps(meta)
    header["digest"] = digest(header, tensors)
    save_file(tensors, str(target), metadata=header)
    return target


def refusal(path: Path) -> str:
    with pytest.raises(UserError) as info:
        A2C.load(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def cli_refusal(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("acrl: error: "), err
    return lines[0]


def test_a_saved_file_carries_a_digest_that_read_model_checks(saved):
    with safe_open(str(saved), framework="pt") as fh:
        header = fh.metadata()
    assert header["format_version"] == "2"
    assert header["digest"] == digest(header, load_file(str(saved)))
    tensors, meta = read_model(saved)
    assert meta["num_timesteps"] == 250 and "policy.actor_head.weight" in tensors


def test_single_bit_flips_in_the_payload_are_refused(saved, tmp_path):
    data = saved.read_bytes()
    start = header_size(data)
    rng = random.Random(0)
    target = tmp_path / "flipped.acrl"
    for _ in range(150):
        target.write_bytes(flipped(data, rng.randrange(start, len(data)), rng.randrange(8)))
        assert "is damaged: its weights do not match the file's checksum" in refusal(target)


def test_single_bit_flips_in_the_header_are_refused(saved, tmp_path):
    data = saved.read_bytes()
    end = header_size(data)
    rng = random.Random(1)
    target = tmp_path / "flipped.acrl"
    positions = [rng.randrange(end) for _ in range(150)]
    positions.append(data.index(b'num_timesteps\\": 250') + len(b'num_timesteps\\": 25'))
    for position in positions:
        target.write_bytes(flipped(data, position, rng.randrange(8)))
        refusal(target)
    target.write_bytes(flipped(data, positions[-1], 0))  # 250 -> 251 steps: valid JSON
    assert "has a damaged header: it does not match the file's checksum" in refusal(target)


def test_cli_eval_refuses_a_flipped_bit_with_one_line(saved, tmp_path, capsys):
    data = saved.read_bytes()
    target = tmp_path / "flipped.acrl"
    target.write_bytes(flipped(data, (header_size(data) + len(data)) // 2, 3))
    line = cli_refusal(capsys, "eval", str(target))
    assert f"{target} is damaged: its weights do not match" in line
    assert target.read_bytes() != data  # nothing repaired or rewritten behind the user's back


def test_files_written_before_the_digest_load_and_a_missing_digest_is_damage(saved, tmp_path):
    tensors = load_file(str(saved))
    with safe_open(str(saved), framework="pt") as fh:
        header = {k: v for k, v in fh.metadata().items() if k != "digest"}
    old = tmp_path / "old.acrl"
    save_file(tensors, str(old), metadata={**header, "format_version": "1"})
    assert A2C.load(old).num_timesteps == 250
    stripped = tmp_path / "stripped.acrl"
    save_file(tensors, str(stripped), metadata=header)  # version 2 without its digest
    assert "checksum is missing or unreadable" in refusal(stripped)


@pytest.fixture
def no_real_network(monkeypatch):
    """Fail the test if a model's network is built (the checks must come first)."""

    def refuse(*args, **kwargs):
        raise AssertionError("a network was built before the file was checked")

    monkeypatch.setattr(base, "ActorCritic", refuse)


def test_a_huge_discrete_space_is_refused_before_any_network_is_built(
    saved, tmp_path, no_real_network
):
    def huge(meta):
        meta["action_space"]["n"] = 10**10

    def larger(meta):
        meta["action_space"]["n"] = 1000

    start = time.perf_counter()
    message = refusal(rewrite(saved, tmp_path / "huge.acrl", huge))
    assert "bad Discrete n 10000000000 in model file" in message
    message = refusal(rewrite(saved, tmp_path / "larger.acrl", larger))
    assert (
        "weights do not match the saved architecture (policy.actor_head.weight has shape "
        "(2, 64), its settings give (1000, 64))" in message
    )
    assert time.perf_counter() - start < 5


def test_a_huge_net_arch_is_refused_before_any_network_is_built(saved, tmp_path, no_real_network):
    def wide(meta):
        meta["config"]["policy_kwargs"]["net_arch"] = [100_000, 100_000]

    start = time.perf_counter()
    message = refusal(rewrite(saved, tmp_path / "wide.acrl", wide))
    assert "weights do not match the saved architecture (policy.trunk.weights.0" in message
    assert "its settings give (2, 100000, 4)" in message
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("depth", [5000, 100])
def test_deeply_nested_metadata_is_refused(saved, tmp_path, capsys, depth):
    def nest(text):
        return text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"

    path = rewrite(saved, tmp_path / "deep.acrl", meta_text=nest)
    assert "has a damaged header (its metadata is not an acrl model's)" in refusal(path)
    assert "damaged header" in cli_refusal(capsys, "eval", str(path))


@pytest.mark.parametrize("dtype", [torch.int8, torch.float64, torch.float16])
def test_weights_of_another_dtype_are_refused_not_converted(saved, tmp_path, dtype):
    def convert(tensors):
        tensors["policy.actor_head.weight"] = tensors["policy.actor_head.weight"].to(dtype)

    message = refusal(rewrite(saved, tmp_path / "dtype.acrl", edit_tensors=convert))
    name = str(dtype).removeprefix("torch.")
    assert f"tensor policy.actor_head.weight is {name}, but acrl writes it as float32" in message


def test_optimizer_state_of_another_shape_or_dtype_is_refused(saved, tmp_path):
    def shorten(tensors):
        tensors["optimizer.0.square_avg"] = tensors["optimizer.0.square_avg"][:-1]

    def widen(tensors):
        tensors["optimizer.0.square_avg"] = tensors["optimizer.0.square_avg"].double()

    assert "optimizer.0.square_avg has shape" in refusal(
        rewrite(saved, tmp_path / "short.acrl", edit_tensors=shorten)
    )
    assert "optimizer.0.square_avg is float64" in refusal(
        rewrite(saved, tmp_path / "wide.acrl", edit_tensors=widen)
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_by_load_eval_and_video(saved, tmp_path, capsys, value):
    def spoil(tensors):
        tensors["policy.critic_head.weight"][0, 3] = value

    path = rewrite(saved, tmp_path / "nan.acrl", edit_tensors=spoil)
    expected = f"{path}: tensor policy.critic_head.weight holds NaN or inf values"
    assert refusal(path) == expected
    assert cli_refusal(capsys, "eval", str(path)) == f"acrl: error: {expected}"
    assert cli_refusal(capsys, "video", str(path)) == f"acrl: error: {expected}"
    assert not (tmp_path / "videos").exists()


def test_bad_rng_states_are_refused_on_fresh_generators(saved):
    tensors, meta = read_model(saved)
    state = np.random.get_state()
    good = {k: v for k, v in tensors.items() if k.startswith("rng.")}
    rng_states(good, meta["rng"])  # the saved one is fine
    bad = [
        ({**good, "rng.numpy": good["rng.numpy"][:10]}, meta["rng"]),
        ({**good, "rng.torch": good["rng.torch"].to(torch.int64)}, meta["rng"]),
        ({**good, "rng.python": good["rng.python"] - 2**40}, meta["rng"]),
        (good, {**meta["rng"], "numpy": ["PCG64", 624, 0, 0.0]}),
        (good, {**meta["rng"], "numpy": ["MT19937", 9999, 0, 0.0]}),
        (good, {"python": meta["rng"]["python"]}),
    ]
    for tensors_, meta_ in bad:
        with pytest.raises(UserError, match=r"^bad RNG state \("):
            rng_states(tensors_, meta_)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), state, strict=True))
    assert set(rng_state()[0]) == set(good)


def test_bad_rng_state_in_a_checkpoint_is_one_line_at_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    train = ["train", "CartPole-v1", "--timesteps", "384", "--n-envs", "2", "--no-progress"]
    assert main([*train, "--checkpoint-every", "128", "--run-dir", str(run)]) == 0
    capsys.readouterr()

    def shorten(tensors):
        tensors["rng.numpy"] = tensors["rng.numpy"][:10]

    files = [run / "model.acrl", *(run / "checkpoints").glob("step-*.acrl")]
    for path in files:
        rewrite(path, path, edit_tensors=shorten)
    before = {p: p.read_bytes() for p in files}
    line = cli_refusal(capsys, "train", "--resume", str(run), "--timesteps", "512")
    assert "bad RNG state (ValueError: rng.numpy is not 624 int64 values)" in line
    assert any(str(p) in line for p in files)
    assert {p: p.read_bytes() for p in files} == before
    assert f"{files[0]}: bad RNG state" in refusal(files[0])
