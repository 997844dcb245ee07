# Every target creates .venv on first use (pip, with constraints.txt pinning the CPU torch build).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUN_DIR ?= runs/cartpole-a2c

.PHONY: setup browser train test lint docs bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	$(MAKE) --no-print-directory browser
	touch $(STAMP)

# Debian's chromium for the report's browser test (tests/test_report.py), if it is missing.
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null || \
	  ($(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
	   $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null) || \
	  echo "warning: chromium could not be installed (apt-get): tests/test_report.py will fail"

# Train A2C on CartPole-v1 with its preset, then evaluate 20 deterministic episodes.
train: $(STAMP)
	$(BIN)/acrl train CartPole-v1 --run-dir $(RUN_DIR) --overwrite
	$(BIN)/acrl eval $(RUN_DIR) --episodes 20

# Two pytest workers over the suite, then Ray's tests alone (a Ray instance takes seconds to
# go away, and timing-sensitive tests should not share the machine with its remains). The suite
# starts ~270 Python processes; where PYTHONDONTWRITEBYTECODE is set (CI, many containers) each
# would compile acrl's modules anew (~0.4 s), so they are compiled here first.
test: $(STAMP)
	$(BIN)/python -m compileall -q acrl tests  # bytecode once, even under PYTHONDONTWRITEBYTECODE
	$(BIN)/python -m pytest -n 2 --dist worksteal --ignore=tests/test_ray.py
	$(BIN)/python -m pytest tests/test_ray.py

# Benchmarks against Stable-Baselines3, sb3-contrib and bare PyTorch (installs the bench extra;
# ~45 min, recurrent.py's RecurrentPPO runs half of it).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[bench]"
	cd benchmarks && ../$(BIN)/python run_all.py

# The documentation site from docs/ (MkDocs, Material, mkdocstrings), offline, warnings as errors.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

lint: $(STAMP)
	$(BIN)/ruff check acrl tests benchmarks examples
	$(BIN)/ruff format --check acrl tests benchmarks examples
	$(BIN)/mypy acrl

clean:
	rm -rf $(VENV) runs site .pytest_cache
