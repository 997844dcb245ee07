"""Run every benchmark, one after the other, and print one table (`make bench`)."""

from __future__ import annotations

import platform

import a3c
import atari_pong
import cartpole
import lunarlander
import minatar_breakout
import recurrent
import scale
import spaces
import torch
from common import print_table

import acrl


def main() -> None:
    print(
        f"acrl {acrl.__version__}, torch {torch.__version__}, "
        f"Python {platform.python_version()}, "
        f"{platform.machine()}, {torch.get_num_threads()} torch threads by default\n"
    )
    results = []
    modules = (cartpole, scale, lunarlander, a3c, spaces, minatar_breakout, atari_pong, recurrent)
    for module in modules:
        print(f"== {module.__name__}")
        results += module.main()
        print()
    print("== all")
    print_table(results)


if __name__ == "__main__":
    main()
