# Two entry points: `make demo` runs the main job, `make test` runs the whole suite.
# Both build the virtual environment from nothing; torch is pinned first so that pip takes the
# CPU wheel instead of resolving a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH := torch==2.13.0

.PHONY: demo test venv test-env system-tools bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(PIP) install -q -e '.[test,pdk]'
	touch $@

venv: $(VENV)/.installed

test-env: $(VENV)/.test-installed system-tools

# System tools the tests drive: ngspice (Debian's, version 39) and chromium (headless, for the report).
system-tools:
	@command -v ngspice >/dev/null 2>&1 || { \
		echo "installing ngspice"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ngspice; }
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium (the report test renders the HTML report headless)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

demo: venv
	$(VENV)/bin/neurodtco demo

test: test-env
	$(PY) -m pytest -n 2 -q

bench: test-env
	$(PY) bench/engine.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
