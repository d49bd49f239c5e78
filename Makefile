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

.PHONY: demo test browser bench clean-venv

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PIP) -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/biovae demo --out demo_out --seed 1

# The run-report test renders pages in headless Chromium. As root on Debian, `make test` installs
# Debian's chromium when missing (and fails if that fails); elsewhere that test is skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the report rendering test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: no chromium; the report rendering test will be skipped"; fi; }

test: $(VENV)/.installed browser
	$(PY) -m pytest

clean-venv:
	rm -rf $(VENV)
