# Two commands do everything on a fresh machine:
#   make round   set up, then run one self-play round on the CPU default (Rocq, tiny model);
#                the first call also extracts the corpus, builds and fine-tunes the tiny model
#   make test    set up, then run the test suite
# Each target prints the commands it runs.

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
STP         := $(VENV)/bin/stp
CONFIG      ?= configs/tiny-rocq.yaml
# torch is pinned here, not in pyproject: 2.13.0 is the local CPU wheel, an unpinned torch
# pulls a multi-GB CUDA build. GPU machines install the `gpu` extra and let vLLM choose.
TORCH_CPU   := torch==2.13.0
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup coq round compare eval test test-fast lint format clean-venv

setup: $(VENV)/.stamp coq

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install $(TORCH_CPU)
	$(PY) -m pip install -e '.[dist,dev]'
	touch $@

# Coquelicot: some miniF2F-Rocq headers load it (Debian ships it for its own coq).
coq:
	@{ command -v coqtop >/dev/null && [ -d "$$(coqc -where)/user-contrib/Coquelicot" ]; } || { \
	  echo "+ apt-get install -y coq libcoq-coquelicot"; \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y coq libcoq-coquelicot; }

round: setup
	$(STP) round --config $(CONFIG)

# STP vs expert iteration from the same start at equal proof budgets, 10 rounds x 3 seeds, and
# the automation baseline; held-out pass@1/pass@8 per round (mean and std over seeds); resumable
compare: setup
	$(PY) scripts/compare_selfplay.py --config $(CONFIG) --rounds 10 --seeds 3

eval: setup  # pass@k of the run's newest model on evaluation.benchmark
	$(STP) eval --config $(CONFIG)

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

lint: setup
	$(VENV)/bin/ruff format --check stp tests scripts
	$(VENV)/bin/ruff check stp tests scripts
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format stp tests scripts
	$(VENV)/bin/ruff check --fix stp tests scripts

clean-venv:
	rm -rf $(VENV)
