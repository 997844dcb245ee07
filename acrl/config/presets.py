"""The presets shipped in the package (acrl/presets/<algo>.yml): their entries, comments and
families, and the YAML dialect they and config files are written in."""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

import yaml


class _YamlLoader(yaml.SafeLoader):
    """YAML that also reads 1e-3 as a float (YAML 1.1 insists on a dot: 1.0e-3)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(text: str) -> Any:
    """Plain YAML (no tags that build objects), 1e-3 read as a float."""
    return yaml.load(text, Loader=_YamlLoader)


def _preset_text(algo: str) -> str:
    return (resources.files("acrl") / "presets" / f"{algo}.yml").read_text()


A2C_BASE_KEY = "a2c_preset"
"""In an A3C preset, the A2C preset it starts from: that entry's settings, then the A3C
entry's own keys over them (a shallow update, as YAML's ``<<`` merge: a ``policy_kwargs``
replaces the A2C entry's whole mapping)."""


def load_presets(algo: str = "a2c") -> dict[str, dict[str, Any]]:
    """All presets of an algorithm, by name (A3C entries with ``a2c_preset`` resolved)."""
    data = read_yaml(_preset_text(algo)) or {}
    presets = {str(k): dict(v) for k, v in data.items()}
    if algo == "a2c":
        return presets
    a2c = load_presets("a2c")
    return {name: _from_a2c(name, entry, a2c) for name, entry in presets.items()}


def _from_a2c(
    name: str, entry: dict[str, Any], a2c: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """``entry`` over the A2C preset its ``a2c_preset`` names (``entry`` itself without one)."""
    base = entry.pop(A2C_BASE_KEY, None)
    if base is None:
        return entry
    if not isinstance(base, str) or base not in a2c:
        raise ValueError(f"preset {name!r}: {A2C_BASE_KEY} {base!r} is not an A2C preset")
    return {**a2c[base], **entry}


_ENTRY_LINE = re.compile(r"^([^\s#][^:]*):(?:\s*&\S+)?\s*$")  # "name:" or "name: &anchor"


def preset_comments(algo: str = "a2c") -> dict[str, list[str]]:
    """Each entry's comment, the lines between its name and its first key, by preset name."""
    comments: dict[str, list[str]] = {}
    name = None
    for line in _preset_text(algo).splitlines():
        head = _ENTRY_LINE.match(line)
        if head:
            name = head.group(1)
            comments[name] = []
        elif name and line.strip().startswith("#"):
            comments[name].append(re.sub(r"^#+ ?", "", line.strip()))
        elif name and line.strip():
            name = None  # the entry's keys: its comment is over
    return comments


def preset_summaries(algo: str = "a2c") -> list[tuple[str, str, str, str]]:
    """(name, env id, budget, first line of its comment) for every preset."""
    comments = preset_comments(algo)
    out = []
    for key, entry in load_presets(algo).items():
        env = str(entry.get("env_id", FAMILY_NAMES.get(key, key)))
        kwargs = entry.get("env_kwargs")
        if kwargs:
            env += " (" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")"
        first = next(iter(comments.get(key, [])), "")
        out.append((key, env, f"{float(entry.get('n_timesteps', 0)):.0e}", first))
    return out


def find_preset(env_or_preset: str, presets: Mapping[str, Any]) -> str | None:
    """The preset that serves ``env_or_preset``: the one of that name, else its family's
    (any MinAtar game: ``minatar``), else None."""
    if env_or_preset in presets:
        return env_or_preset
    family = family_preset(env_or_preset)
    return family if family in presets else None


FAMILY_PRESETS = {"MinAtar/*": "minatar", "ALE/*": "atari", "*NoFrameskip-v4": "atari"}
"""Presets that serve every env id of a family without a preset of its own, by id pattern
(a prefix or a suffix, ``*`` standing for the rest); and ``mujoco`` serves every
Gymnasium MuJoCo env (``is_mujoco_id``) without a preset of its own."""
MUJOCO_ENTRY_POINT = "gymnasium.envs.mujoco"
FAMILY_NAMES = {
    "minatar": "MinAtar/*",
    "atari": "ALE/*, *NoFrameskip-v4",
    "mujoco": "Gymnasium's MuJoCo ids (Ant-v*, ..., Walker2d-v*)",
}
"""Each family preset's envs, as ``acrl presets`` and its messages name them."""


def family_preset(env_id: str) -> str | None:
    """The family preset's name for ``env_id`` ("module:" prefix ignored), or None."""
    name = env_id.rpartition(":")[2]
    family = next((p for pattern, p in FAMILY_PRESETS.items() if _matches(name, pattern)), None)
    return family or ("mujoco" if is_mujoco_id(name) else None)


def is_mujoco_id(env_id: str) -> bool:
    """Whether Gymnasium registers ``env_id`` (no "module:" prefix) as one of its MuJoCo
    envs, by its entry point: nothing is made or imported but gymnasium."""
    import gymnasium as gym  # not at the top: `acrl presets` starts without it

    spec = gym.registry.get(env_id)
    entry = spec.entry_point if spec is not None else None
    return isinstance(entry, str) and entry.startswith(MUJOCO_ENTRY_POINT)


def _matches(name: str, pattern: str) -> bool:
    head, _, tail = pattern.partition("*")
    return len(name) > len(head) + len(tail) and name.startswith(head) and name.endswith(tail)
