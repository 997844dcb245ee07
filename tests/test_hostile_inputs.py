"""Malformed input of every kind: one line on stderr, exit status 2, and not one byte on disk
changed (not the existing run, not the bad inputs themselves, no new file or directory).

The cases run ``acrl``'s ``main`` in this process, in a directory that holds a finished run
and a library of broken inputs; ``test_cli.py`` checks the same through real subprocesses.
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from acrl import A2C, A3C
from acrl.cli import main
from acrl.errors import UserError
from acrl.run.model_file import read_model, write_model
from tests.test_cli import acrl_argv

PIXELS = "tests.image_envs:acrl-tests/PixelSide-v0"
EXTRACTOR = "policy_kwargs.features_extractor_class"
MARKER = "PWNED"  # what every payload below would create if anything executed it
TIME_AWARE = "gymnasium.wrappers:TimeAwareObservation"

BAD_YAML = {
    "list.yml": "- env_id\n- CartPole-v1\n",
    "scalar.yml": "CartPole-v1\n",
    "syntax.yml": "env_id: [CartPole-v1,\n",
    "tag.yml": f"env_id: !!python/object/apply:os.system ['touch {MARKER}']\n",
    "unknown.yml": "env_id: CartPole-v1\nno_such_setting: 1\n",
    "type.yml": "env_id: CartPole-v1\nn_envs: eight\n",
    "range.yml": "env_id: CartPole-v1\ngamma: 5\n",
    "hyper.yml": "env_id: CartPole-v1\nhyperparams: 5\n",
    "noenv.yml": "gamma: 0.9\n",
    "stack.yml": "env_id: CartPole-v1\nenv_wrapper:\n"
    "  - gymnasium.wrappers:FrameStackObservation: {stack_size: 100000000}\n",
    # a "billion laughs": seven levels of ten aliases each are 10^7 values once expanded
    "aliases.yml": "env_id: CartPole-v1\na0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
    + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 8))
    + "policy_kwargs: {features_extractor_kwargs: {x: *a7}}\n",
}

# (argv, a fragment of the one-line error)
CLI_CASES = [
    # train: env ids, presets, algorithms, flags
    (["train", "NoSuchEnv-v0"], "unknown environment id 'NoSuchEnv-v0'"),
    (["train", "CartPole"], "unknown environment id 'CartPole'"),
    (["train", "tests.observation_envs:acrl-tests/TextObs-v0"], "unsupported observation space"),
    (["train", "CartPole-v1", "--preset", "nope"], "unknown preset 'nope'"),
    (["train", "CartPole-v1", "--algo", "ppo"], "unknown algorithm 'ppo'"),
    (["train", "CartPole-v1", "--bogus"], "unrecognized arguments"),
    (["train"], "give an env id"),
    (["train", "CartPole-v1", "--timesteps", "-5"], "--timesteps must be >= 1"),
    (["train", "CartPole-v1", "--timesteps", "many"], "invalid steps value: 'many'"),
    (["train", "CartPole-v1", "--timesteps", "2.5e3x"], "invalid steps value"),
    (["train", "CartPole-v1", "--timesteps", "1.5"], "invalid steps value: '1.5'"),
    (["train", "CartPole-v1", "--eval-every", "inf"], "invalid steps value: 'inf'"),
    (["train", "CartPole-v1", "--n-envs", "0"], "--n-envs must be >= 1"),
    (["train", "CartPole-v1", "--n-envs", "100000000"], "more environments than one process"),
    (["eval", "run", "--episodes", "100000000", "--n-envs", "100000000"], "n_envs must be"),
    (["train", "CartPole-v1", "--run-dir", "", "--overwrite"], "the current directory"),
    (["train", "CartPole-v1", "--checkpoint-every", "0"], "--checkpoint-every must be >= 1"),
    (["train", "CartPole-v1", "--keep-checkpoints", "0"], "--keep-checkpoints must be >= 1"),
    (["train", "CartPole-v1", "--video-every", "0"], "--video-every must be >= 1"),
    (["train", "CartPole-v1", "--threads", "0"], "--threads must be >= 1"),
    (["train", "CartPole-v1", "--device", "cuda:7"], "device"),
    (["train", "CartPole-v1", "--workers", "2"], "--workers is an A3C setting"),
    (["train", "CartPole-v1", "--runtime", "ray"], "--runtime is an A3C setting"),
    (["train", "CartPole-v1", "--backend", "ray"], "--runtime is an A3C setting"),
    (["train", "CartPole-v1", "--algo", "a3c", "--backend", "spark"], "invalid choice"),
    (["train", "CartPole-v1", "--algo", "a3c", "--runtime", "spark"], "invalid choice"),
    (
        [
            "train",
            "CartPole-v1",
            "--set",
            "backend=numpy",
            "--set",
            "policy_kwargs.layer_norm=true",
        ],
        "backend 'numpy' does not cover this model: layer_norm",
    ),
    (["train", "CartPole-v1", "--threads", "two"], "--threads must be an integer"),
    (["train", "CartPole-v1", "--algo", "a3c", "--address", "auto"], "joins a Ray cluster"),
    (["train", "CartPole-v1", "--algo", "a3c", "--set", "backend=spark"], "backend must be"),
    (
        ["train", "CartPole-v1", "--algo", "a3c", "--runtime", "ray", "--address", "127.0.0.1:1"],
        "cannot reach the Ray cluster at 127.0.0.1:1",
    ),
    (
        ["train", "CartPole-v1", "--algo", "a3c", "--runtime", "ray", "--set", "lock_updates=true"],
        "lock_updates is a setting of the processes runtime",
    ),
    (["train", "CartPole-v1", "--jobs", "2"], "--jobs runs seeds in parallel"),
    (["train", "CartPole-v1", "--seeds", "1,x"], "--seeds takes comma-separated integers"),
    (["train", "CartPole-v1", "--seeds", "1,4294967296"], "a seed must be at most 4294967295"),
    (["export", "run", "--out", "bad"], "--out bad is a directory; name the file to write"),
    (["train", "CartPole-v1", "--seeds", "0,1", "--seed", "3"], "either --seed or --seeds"),
    (["train", "CartPole-v1", "--run-dir", "run"], "already exists"),
    # train: --set
    (["train", "CartPole-v1", "--set", "no_such_key=1"], "unknown setting 'no_such_key'"),
    (["train", "CartPole-v1", "--set", "gamma"], "--set expects key=value"),
    (["train", "CartPole-v1", "--set", "gamma=2"], "gamma must be in (0, 1]"),
    (["train", "CartPole-v1", "--set", "n_steps=abc"], "n_steps must be an integer"),
    (["train", "CartPole-v1", "--set", "n_envs=0"], "n_envs must be an integer >= 1"),
    (["train", "CartPole-v1", "--set", "learning_rate=-1"], "learning_rate must be"),
    (["train", "CartPole-v1", "--set", "use_sde=true"], "use_sde needs a continuous"),
    (["train", "Pendulum-v1", "--set", "sde_sample_freq=0"], "sde_sample_freq must be -1"),
    (["train", "LunarLander-v3", "--set", "adam_betas=[0.9]"], "adam_betas must be two numbers"),
    (["train", "CartPole-v1", "--set", "critic_lr_scale=0"], "critic_lr_scale must be in"),
    (["train", "CartPole-v1", "--set", "learning_rate=lin_abc"], "learning_rate 'lin_abc'"),
    (["train", "CartPole-v1", "--set", "vectorization=nope"], "vectorization must be one of"),
    (["train", "CartPole-v1", "--set", "env_kwargs=[1,2]"], "env_kwargs must be a mapping"),
    (["train", "Pendulum-v1", "--set", "env_kwargs.no_such_arg=1"], "bad env_kwargs"),
    (["train", "CartPole-v1", "--set", "policy_kwargs=5"], "policy_kwargs must be a mapping"),
    (["train", "CartPole-v1", "--set", "policy_kwargs.activation=nope"], "activation must be"),
    (["train", "CartPole-v1", "--set", "policy_kwargs.net_arch=[0]"], "net_arch sizes"),
    # train: values that pass for numbers but cannot train, sizes that cannot fit
    (["train", "Pendulum-v1", "--set", "policy_kwargs.log_std_init=.nan"], "log_std_init must"),
    (["train", "Pendulum-v1", "--set", "policy_kwargs.log_std_init=.inf"], "log_std_init must"),
    (["train", "Pendulum-v1", "--set", "policy_kwargs.log_std_init=-.inf"], "log_std_init must"),
    (["train", "CartPole-v1", "--set", "learning_rate=1e38"], "learning_rate must be a number"),
    (["train", "CartPole-v1", "--set", "seed=1e23"], "seed must be an integer in [0, 4294967295]"),
    (["train", "CartPole-v1", "--set", "n_steps=100000000000"], "n_steps=100000000000 x n_envs"),
    (
        ["train", "CartPole-v1", "--set", "policy_kwargs.net_arch=[100000,100000]"],
        "makes a network of 20,001,500,005 parameters",
    ),
    (["train", "acrl-tests/FailingInit-v0"], "env 'acrl-tests/FailingInit-v0' failed to start"),
    # train: env wrappers and env packages
    (["train", "CartPole-v1", "--set", "env_wrapper=[5]"], "env_wrapper entries are"),
    (["train", "CartPole-v1", "--set", "env_wrapper=no_class"], 'is not "module:Class"'),
    (["train", "CartPole-v1", "--set", "env_wrapper=nosuchmod:W"], "nosuchmod: cannot import"),
    (
        ["train", "CartPole-v1", "--set", "env_wrapper=gymnasium.wrappers:NoSuchWrapper"],
        "has no gymnasium.Wrapper named NoSuchWrapper",
    ),
    (["train", "CartPole-v1", "--set", "env_wrapper=os:system"], "no gymnasium.Wrapper named"),
    (
        ["train", "CartPole-v1", "--set", f"env_wrapper={{{TIME_AWARE}: {{bogus: 1}}}}"],
        "failed to wrap the env: TypeError",
    ),
    (["train", "CartPole-v1", "--set", "frame_stack=0"], "frame_stack must be an integer in"),
    (["train", "CartPole-v1", "--set", "frame_stack=x"], "frame_stack must be an integer in"),
    (
        ["train", "CartPole-v1", "--set", "frame_stack=2", "--set", "vectorization=native"],
        "a native vector env takes no env wrappers",
    ),
    (["train", "CartPole-v1", "--set", "env_packages=[nopkg]"], "env_packages nopkg: cannot"),
    (["train", "CartPole-v1", "--set", "env_packages={a: b}"], "env_packages must be a list"),
    (["train", "tests.action_envs:acrl-tests/TupleAction-v0"], "unsupported action space Tuple("),
    # train: YAML config files
    (["train", "--config", "bad/list.yml"], "must be a mapping of settings, not list"),
    (["train", "--config", "bad/scalar.yml"], "must be a mapping of settings, not str"),
    (["train", "--config", "bad/syntax.yml"], "(line 2)"),
    (["train", "--config", "bad/tag.yml"], "could not determine a constructor"),
    (["train", "--config", "bad/unknown.yml"], "unknown setting 'no_such_setting'"),
    (["train", "--config", "bad/type.yml"], "n_envs must be an integer"),
    (["train", "--config", "bad/range.yml"], "gamma must be in (0, 1]"),
    (["train", "--config", "bad/hyper.yml"], "hyperparams must be a mapping"),
    (["train", "--config", "bad/noenv.yml"], "a --config file with env_id"),
    (["train", "--config", "bad/missing.yml"], "cannot read config file"),
    # train --resume
    (["train", "--resume", "nowhere"], "is not a run directory written by `acrl train`"),
    (["train", "--resume", "run", "--seed", "3"], "drop --seed"),
    (["train", "--resume", "run", "--seed", "0"], "drop --seed"),
    (["train", "--resume", "run", "CartPole-v1"], "drop an env id"),
    (["train", "--resume", "run", "--config", "bad/noenv.yml"], "drop --config"),
    (["train", "--resume", "list-config-run"], "is not a run directory"),
    (["train", "--resume", "pickled-run"], "model.acrl does not hold what acrl writes"),
    (["train", "--resume", "pickled-checkpoints-run"], "does not hold what acrl writes"),
    (["train", "--resume", "truncated-checkpoints-run"], "has no checkpoint to resume from"),
    (["train", "--resume", "pendulum-config-run"], "not this run's checkpoint"),
    (["train", "--resume", "a3c-checkpoint-run"], "not this run's checkpoint"),
    (["train", "--resume", "run", "--address", "auto"], "this run does not use --runtime ray"),
    # model files: eval, video, plot
    (["eval", "nowhere/model.acrl"], "no model file at"),
    (["eval", "notes.txt"], "is not an acrl model file"),
    (["eval", "bad/empty.acrl"], "is not an acrl model file"),
    (["eval", "bad/truncated.acrl"], "is not an acrl model file"),
    (["eval", "bad/corrupt.acrl"], "is not an acrl model file"),
    (["eval", "bad/damaged-meta.acrl"], "damaged header"),
    (["eval", "bad/torch-pickle.acrl"], "is not an acrl model file"),
    (["eval", "bad/pickle.acrl"], "is not an acrl model file"),
    (["eval", "bad/weights.safetensors"], "no acrl header"),
    (["eval", "run", "--episodes", "0"], "--episodes must be >= 1"),
    (["eval", "run", "--seed", "-3"], "--seed must be >= 0"),
    (["eval", "run", "--seed", "99999999999"], "--seed must be <= 4294967295"),
    (["eval", "run", "--n-envs", "100000000"], "--n-envs must be in [1, --episodes]"),
    (["eval", "bad/module-env.acrl"], "needs module 'pwnedpkg' imported"),
    (["eval", "bad/module-env.acrl", "--env-module", "no_such_module"], "cannot import it"),
    (["eval", "bad/make-vec-kwargs.acrl"], "env_kwargs.wrappers, an argument of"),
    (["video", "bad/module-env.acrl"], "pass --env-module pwnedpkg"),
    (["eval", "bad/other-wrappers.acrl"], "does not match the model's Box("),
    (["video", "bad/other-wrappers.acrl"], "does not match the model's Box("),
    (["eval", "bad/user-wrapper.acrl"], "pass --env-module pwnedpkg"),
    (["video", "bad/user-wrapper.acrl"], "pass --env-module pwnedpkg"),
    (["eval", "bad/os-wrapper.acrl"], "has no gymnasium.Wrapper named system"),
    (["eval", "bad/video-wrapper.acrl"], "writes video files"),
    (["eval", "bad/huge-stack.acrl"], "stack_size must be an integer in [1, 1024]"),
    (["eval", "bad/main-wrapper.acrl"], "whose module 'acrl.__main__' acrl never imports"),
    (["train", "--config", "bad/stack.yml"], "stack_size must be an integer in [1, 1024]"),
    (["train", "--config", "bad/aliases.yml"], "more than 100,000 values once its aliases"),
    (["train", "--config", "/dev/zero"], "is larger than 1,048,576 bytes"),
    (["video", "bad/unbuildable-wrapper.acrl"], "cannot be rebuilt from its spec"),
    (["eval", "bad/damaged-wrappers.acrl"], "env_wrappers in the metadata is not a list"),
    (["video", "bad/unregistered.acrl"], "names env 'NoSuchEnv-v0', which is not registered"),
    (["video", "bad/human.acrl"], "sets env_kwargs.render_mode to 'human'"),
    (["video", "bad/torch-pickle.acrl"], "is not an acrl model file"),
    (["video", "run", "--episodes", "0"], "--episodes must be >= 1"),
    (["plot", "nowhere"], "is not a run directory"),
    (["plot", "run", "--window", "0"], "--window must be >= 1"),
    (["plot", "run", "--band", "nope"], "invalid choice"),
    (["plot", "run", "--policy-slice", "--dims", "0,9"], "dimension 9 is out of range"),
    (["plot", "run", "--policy-slice", "--fixed=1,2"], "--fixed needs 4 values"),
    (["plot", "run", "--policy-slice", "--range=1:0,0:1"], "LOW < HIGH"),
    (["plot", "run", "--policy-slice", "--resolution", "100000"], "lower --resolution"),
    (["plot", "bad/module-env.acrl", "--policy-slice"], "needs module 'pwnedpkg' imported"),
    # images and features extractors
    (["train", PIXELS, "--set", "policy=MlpPolicy"], "holds images: use 'CnnPolicy'"),
    (["train", PIXELS, "--seeds", "0,1", "--set", "policy=MlpPolicy"], "use 'CnnPolicy'"),
    (["train", "CartPole-v1", "--set", "policy=CnnPolicy"], "CnnPolicy is for image observations"),
    (["train", "tests.image_envs:acrl-tests/PixelCube-v0"], "set policy_kwargs.image_channels"),
    (["train", PIXELS, "--set", f"{EXTRACTOR}=NatureCNN"], "NatureCNN needs images of at least"),
    (["train", PIXELS, "--set", f"{EXTRACTOR}=nosuch.nets:Net"], "importing nosuch.nets failed"),
    (["train", PIXELS, "--set", f"{EXTRACTOR}=os:getcwd"], "is not a torch module class"),
    (["train", PIXELS, "--set", f"{EXTRACTOR}=torch.nn:Identity"], "torch's or acrl's own"),
    (["train", PIXELS, "--set", f"{EXTRACTOR}=big net"], "features_extractor_class must be"),
    (["train", PIXELS, "--set", f"{EXTRACTOR}=tests.user_extractors:WrongSize"], "returned (1, 3)"),
    (
        ["train", PIXELS, "--set", "policy_kwargs.features_extractor_kwargs={depth: 3}"],
        "features_extractor_kwargs of SmallCNN: unknown ['depth']",
    ),
    (["train", PIXELS, "--set", "policy_kwargs.image_channels=sideways"], "image_channels must"),
    (["eval", "bad/user-extractor.acrl"], "pass --env-module pwnedpkg"),
    (["train", "minatar"], "preset 'minatar' serves every env of MinAtar/*"),
    (["train", "atari"], "preset 'atari' serves every env of ALE/*"),
    (
        ["train", "ALE/Pong-v5", "--set", "vectorization=native", "--set", "env_kwargs.mode=1"],
        "AtariVectorEnv (vectorization native) cannot run this: it takes no env_kwargs.mode",
    ),
    (
        ["train", "CartPole-v1", "--set", "terminal_on_life_loss=true"],
        "terminal_on_life_loss needs lives in the env's info, and CartPole-v1 reports none",
    ),
    (["frobnicate"], "invalid choice"),
]

# Python API (code run with ``ws`` bound), and a fragment of the UserError's message
API_CASES = [
    ("A2C.load(ws / 'bad' / 'a3c.acrl')", "use A3C.load"),
    ("A3C.load(ws / 'run' / 'model.acrl')", "use A2C.load"),
    ("A2C.load(ws / 'run' / 'model.acrl', env='Pendulum-v1')", "does not match the model's"),
    ("A2C.load(ws / 'bad' / 'torch-pickle.acrl')", "is not an acrl model file"),
    ("A2C.load(ws / 'bad' / 'other-shape.acrl')", "weights do not match"),
    ("A2C.load(ws / 'bad' / 'module-env.acrl').make_env()", "needs module 'pwnedpkg'"),
    ("A2C.load(ws / 'bad' / 'module-env.acrl').learn(100)", "needs module 'pwnedpkg'"),
    ("A2C('MlpPolicy', 'CartPole-v1', n_steps=10**11)", "lower n_steps or n_envs"),
    ("A2C('MlpPolicy', 'CartPole-v1', frame_stack=0)", "frame_stack must be an integer"),
    ("A2C.load(ws / 'bad' / 'user-wrapper.acrl').make_env()", "pass --env-module pwnedpkg"),
    ("A2C('MlpPolicy', 'CartPole-v1', policy_kwargs={'net_arch': [10**5] * 2})", "parameters"),
]


class _Payload:
    """Unpickling this creates the marker file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _write_bad_models(ws: Path) -> None:
    bad = ws / "bad"
    good = (ws / "run" / "model.acrl").read_bytes()
    (bad / "empty.acrl").write_bytes(b"")
    (bad / "truncated.acrl").write_bytes(good[: len(good) // 2])
    (bad / "corrupt.acrl").write_bytes(good[:8] + b"\xff" * 64 + good[72:])
    torch.save({"policy.w": _Payload(ws / MARKER)}, bad / "torch-pickle.acrl")
    (bad / "pickle.acrl").write_bytes(pickle.dumps(_Payload(ws / MARKER)))
    (bad / "notes.txt").write_text("not a model\n")
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    save_file({"w": torch.zeros(2)}, str(bad / "weights.safetensors"))
    tensors = load_file(str(ws / "run" / "model.acrl"))
    with safe_open(str(ws / "run" / "model.acrl"), framework="pt") as fh:
        header = fh.metadata()
    save_file(tensors, str(bad / "damaged-meta.acrl"), metadata={**header, "meta": "{not json"})
    # the file of a wider network under the header of this one: shapes disagree
    wide = A2C("MlpPolicy", "CartPole-v1", n_envs=1, policy_kwargs={"net_arch": [8]}, seed=0)
    wide.save(bad / "wide.acrl")
    save_file(load_file(str(bad / "wide.acrl")), str(bad / "other-shape.acrl"), metadata=header)
    A3C("MlpPolicy", "CartPole-v1", n_envs=1, n_workers=1, seed=0).save(bad / "a3c.acrl")
    # a model file whose env id would import a module (pwnedpkg.py creates the marker), or
    # whose env is not installed, renders to a window, or takes make_vec's callables
    (ws / "pwnedpkg.py").write_text(f"open({MARKER!r}, 'w')\n")
    _rewrite_meta(ws, "module-env.acrl", env_id="pwnedpkg:Env-v0")
    _rewrite_meta(ws, "unregistered.acrl", env_id="NoSuchEnv-v0")
    _rewrite_meta(ws, "human.acrl", env_kwargs={"render_mode": "human"})
    _rewrite_meta(ws, "make-vec-kwargs.acrl", env_kwargs={"wrappers": ["os.system"]})
    # env wrappers: other observations than the model's, a module of the user's (pwnedpkg),
    # a function, a wrapper that writes files, one recorded without its arguments
    wrapper = {"entry_point": TIME_AWARE, "kwargs": {}, "problem": None}
    _rewrite_meta(ws, "other-wrappers.acrl", env_wrappers=[wrapper])
    user = {**wrapper, "entry_point": "pwnedpkg:Wrapper"}
    _rewrite_meta(ws, "user-wrapper.acrl", env_wrappers=[user])
    _rewrite_meta(ws, "os-wrapper.acrl", env_wrappers=[{**wrapper, "entry_point": "os:system"}])
    main_wrapper = {**wrapper, "entry_point": "acrl.__main__:Wrapper"}  # would run the CLI
    _rewrite_meta(ws, "main-wrapper.acrl", env_wrappers=[main_wrapper])
    video = {**wrapper, "entry_point": "gymnasium.wrappers:RecordVideo"}
    video["kwargs"] = {"video_folder": MARKER}
    _rewrite_meta(ws, "video-wrapper.acrl", env_wrappers=[video])
    stack = {"entry_point": "gymnasium.wrappers:FrameStackObservation", "problem": None}
    stack["kwargs"] = {"stack_size": 100_000_000}  # gigabytes of frames, before any check
    _rewrite_meta(ws, "huge-stack.acrl", env_wrappers=[stack])
    unbuildable = {**wrapper, "kwargs": None, "problem": "it does not record its arguments"}
    _rewrite_meta(ws, "unbuildable-wrapper.acrl", env_wrappers=[unbuildable])
    _rewrite_meta(ws, "damaged-wrappers.acrl", env_wrappers=TIME_AWARE)
    # a features extractor of a module of the user's (pwnedpkg): never imported by a file
    tensors, meta = read_model(ws / "run" / "model.acrl")
    kwargs = {**meta["config"]["policy_kwargs"], "features_extractor_class": "pwnedpkg:Net"}
    config = {**meta["config"], "policy_kwargs": kwargs}
    write_model(ws / "bad" / "user-extractor", tensors, {**meta, "config": config})


def _rewrite_meta(ws: Path, name: str, **changes) -> None:
    """The finished run's model under bad/NAME, with ``changes`` to its JSON metadata."""
    tensors, meta = read_model(ws / "run" / "model.acrl")
    write_model(ws / "bad" / name, tensors, {**meta, **changes})


def _copy_run(ws: Path, name: str) -> Path:
    target = ws / name
    shutil.copytree(ws / "run", target)
    return target


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A directory with a finished run, runs that were tampered with, and broken inputs."""
    ws = tmp_path_factory.mktemp("ws")
    done = subprocess.run(
        acrl_argv("train", "CartPole-v1", "--timesteps", 1024, "--n-envs", 4)
        + ["--checkpoint-every", "256", "--run-dir", "run", "--no-progress"],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (ws / "bad").mkdir()
    for name, text in BAD_YAML.items():
        (ws / "bad" / name).write_text(text)
    (ws / "notes.txt").write_text("not a model\n")
    _write_bad_models(ws)
    (_copy_run(ws, "list-config-run") / "config.yaml").write_text("- not\n- a mapping\n")
    pickled = _copy_run(ws, "pickled-run")
    for model in [pickled / "model.acrl", *(pickled / "checkpoints").glob("*.acrl")]:
        shutil.copyfile(ws / "bad" / "torch-pickle.acrl", model)
    pickled = _copy_run(ws, "pickled-checkpoints-run")  # no model.acrl: only checkpoints
    (pickled / "model.acrl").unlink()
    for model in (pickled / "checkpoints").glob("*.acrl"):
        shutil.copyfile(ws / "bad" / "torch-pickle.acrl", model)
    truncated = _copy_run(ws, "truncated-checkpoints-run")  # acrl's headers, cut weights
    (truncated / "model.acrl").unlink()
    for model in (truncated / "checkpoints").glob("*.acrl"):
        shutil.copyfile(ws / "bad" / "truncated.acrl", model)
    config = yaml.safe_load((ws / "run" / "config.yaml").read_text())
    pendulum = _copy_run(ws, "pendulum-config-run") / "config.yaml"
    pendulum.write_text(yaml.safe_dump({**config, "env_id": "Pendulum-v1"}))
    a3c = _copy_run(ws, "a3c-checkpoint-run")
    shutil.rmtree(a3c / "checkpoints")
    shutil.copyfile(ws / "bad" / "a3c.acrl", a3c / "model.acrl")
    return ws


def snapshot(root: Path) -> dict[str, str]:
    """Every file and directory under ``root``, with a digest of each file's bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        out[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_the_table_is_large():
    assert len(CLI_CASES) + len(API_CASES) >= 30


@pytest.mark.parametrize("argv, fragment", CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_cli_refuses_with_one_line_and_changes_nothing(ws, monkeypatch, capsys, argv, fragment):
    monkeypatch.chdir(ws)
    before = snapshot(ws)
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert fragment in lines[0], lines[0]
    assert snapshot(ws) == before
    assert not (ws / MARKER).exists()


@pytest.mark.parametrize("code, fragment", API_CASES, ids=[c for c, _ in API_CASES])
def test_api_refuses_with_one_line_and_changes_nothing(ws, code, fragment):
    before = snapshot(ws)
    with pytest.raises(UserError) as info:
        eval(code, {"A2C": A2C, "A3C": A3C, "ws": ws})
    message = str(info.value)
    assert "\n" not in message and fragment in message, message
    assert snapshot(ws) == before
    assert not (ws / MARKER).exists()
