"""``acrl presets``: every preset in one line each, or one preset's whole entry as the YAML
file that ``acrl train --config`` takes."""

from __future__ import annotations

import argparse
import sys

import yaml

from acrl.errors import UserError


def add_presets(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name",
        nargs="?",
        help="a preset name or an env id: print its settings as a --config file "
        "(default: list every preset)",
    )
    parser.add_argument(
        "--algo", choices=("a2c", "a3c"), default="a2c", help="with NAME: the algorithm's preset"
    )


def cmd_presets(args: argparse.Namespace) -> int:
    text = list_presets() if args.name is None else preset_file(args.name, args.algo)
    sys.stdout.write(text)
    sys.stdout.flush()  # a closed pipe raises here, inside main's handler, not at exit
    return 0


def list_presets() -> str:
    """One line a preset: name, algorithm, env, budget, the first line of its comment."""
    from acrl.config.presets import preset_summaries
    from acrl.config.runs import ALGOS

    rows = [(algo, *row) for algo in ALGOS for row in preset_summaries(algo)]
    width = max(len(r[1]) for r in rows)
    env_width = max(len(r[2]) for r in rows)
    return "".join(
        f"{name:<{width}}  {algo}  {env:<{env_width}}  {budget:>6}  {comment}\n"
        for algo, name, env, budget, comment in rows
    )


def preset_file(env_or_preset: str, algo: str) -> str:
    """The settings of the preset that serves ``env_or_preset`` (a family's, for an env id of
    the family), resolved as training resolves them, under its comment: YAML that
    ``acrl train --config`` reads back to the same run."""
    from acrl.config.presets import FAMILY_NAMES, find_preset, load_presets, preset_comments

    presets = load_presets(algo)
    name = find_preset(env_or_preset, presets)
    if name is None:
        raise UserError(f"no {algo} preset serves {env_or_preset!r}; `acrl presets` lists them")
    entry = presets[name]
    env_id = env_or_preset if env_or_preset != name else entry.get("env_id")
    settings = {"algo": algo, "preset": name, **({"env_id": env_id} if env_id else {})}
    settings.update((k, v) for k, v in entry.items() if k != "env_id")
    head = [f"acrl's {algo} preset {name!r} (acrl/presets/{algo}.yml)"]
    if name in FAMILY_NAMES and env_or_preset == name:
        head.append(f"It serves every env of {FAMILY_NAMES[name]}: train with an env id.")
    lines = [*head, "", *preset_comments(algo).get(name, [])]
    comment = "".join(f"# {line}".rstrip() + "\n" for line in lines)
    return comment + yaml.safe_dump(settings, sort_keys=False)
