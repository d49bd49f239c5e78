# Two commands do all the set-up: `make demo` and `make test`. Both create and reuse .venv.
#
# PyTorch: TORCH_SPEC picks the release. Where a CPU build of that release lies in pip's
# find-links (as on our CPU machines) pip takes it; elsewhere pip takes the registry's default
# build, which on Linux x86-64 is the CUDA one - right for a GPU user. A CPU-only user elsewhere
# can skip the CUDA download with TORCH_PIP_ARGS="--index-url <PyTorch's CPU wheel index>".
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PIP := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: demo test bench clean-venv

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PIP) -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/biovae demo --out demo_out --seed 1

test: $(VENV)/.installed
	$(PY) -m pytest

clean-venv:
	rm -rf $(VENV)
