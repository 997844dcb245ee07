"""The package's layers: dependencies flow one way, engines stay apart, records need no torch."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "acrl"
# bottom to top; a module may import its own layer and those below it
LAYERS = {
    "errors": 0,
    "user_modules": 0,
    "config": 1,
    "envs": 2,
    "model": 2,
    "learner": 3,
    "engines": 4,
    "run": 5,
    "algorithms": 6,
    "plotting": 7,
    "tune": 7,
    "cli": 7,
    "__main__": 7,
}
# each engine and the modules that are its parts; ``signals`` serves the ones with processes
ENGINES = {
    "sync": {"sync", "env_watch"},
    "torchrun": {"torchrun"},
    "hogwild": {"hogwild", "hogwild_worker", "hogwild_memory"},
    "ray": {"ray", "ray_worker"},
}


def imports_of(path: Path) -> list[str]:
    """Every acrl module ``path`` imports, at its top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("acrl"):
            found += [node.module]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("acrl")]
    return found


def layer(module: str) -> int:
    parts = module.split(".")
    return 0 if len(parts) == 1 else LAYERS[parts[1]]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_dependencies_flow_one_way(path):
    own = ".".join(("acrl", *path.relative_to(PACKAGE).with_suffix("").parts))
    upward = [m for m in imports_of(path) if layer(m) > layer(own)]
    assert not upward, f"{own} (layer {layer(own)}) imports {upward} from above"


def test_every_module_sits_in_a_layer():
    top = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if not p.name.startswith("_")}
    assert top - {"presets"} == set(LAYERS) - {"__main__"}


def test_no_engine_imports_another():
    for engine, parts in ENGINES.items():
        for part in parts:
            imported = {
                m.split(".")[2]
                for m in imports_of(PACKAGE / "engines" / f"{part}.py")
                if m.startswith("acrl.engines.")
            }
            assert imported <= parts | {"signals"}, f"{part} ({engine}) imports {imported}"
    on_disk = {p.stem for p in (PACKAGE / "engines").glob("*.py")} - {"__init__", "signals"}
    assert on_disk == set().union(*ENGINES.values())


def test_only_the_process_engine_touches_torch_multiprocessing():
    users = {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if "torch.multiprocessing" in p.read_text()
    }
    assert users == {"engines/hogwild.py"}


HELP = "from acrl.cli import main\ntry:\n    main({argv})\nexcept SystemExit:\n    pass"
MISTAKE = "from acrl.cli import main\nassert main({argv}) == 2"


@pytest.mark.parametrize(
    "code",
    [
        "from acrl.cli import main; main(['presets'])",
        "from acrl.cli import main; main(['presets', 'Hopper-v5', '--algo', 'a3c'])",
        HELP.format(argv="['--help']"),
        HELP.format(argv="['train', '--help']"),
        "import acrl.config, acrl.config.runs; acrl.config.runs.resolve_run_config('CartPole-v1')",
        # a mistake in the flags, the config or the env id is answered before torch (~2 s)
        MISTAKE.format(argv="['train', 'CartPole-v1', '--set', 'gamma=2']"),
        MISTAKE.format(argv="['train', 'NoSuchEnv-v0']"),
        MISTAKE.format(argv="['train', 'CartPole-v1', '--seeds', '0,0']"),
        MISTAKE.format(argv="['train', '--resume', 'no-such-run']"),
        MISTAKE.format(argv="['eval', 'no-such-run', '--episodes', '0']"),
        MISTAKE.format(argv="['plot', 'no-such-run']"),
        MISTAKE.format(argv="['eval', 'no-such-model']"),
        MISTAKE.format(argv="['video', 'no-such-model']"),
        MISTAKE.format(argv="['export', 'no-such-model']"),
        MISTAKE.format(argv="['export', 'no-such-model', '--format', 'tflite']"),
        MISTAKE.format(argv="['report', 'no-such-run']"),
    ],
    ids=[
        "presets",
        "one preset",
        "help",
        "train help",
        "config records",
        "bad setting",
        "unknown env",
        "bad seeds",
        "resume nothing",
        "bad eval flag",
        "plot nothing",
        "eval nothing",
        "video nothing",
        "export nothing",
        "bad export format",
        "report nothing",
    ],
)
def test_records_and_the_cli_front_import_no_torch(code, tmp_path):
    check = f"{code}\nimport sys\nassert 'torch' not in sys.modules, 'torch was imported'"
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert not any(tmp_path.iterdir())  # and wrote nothing
