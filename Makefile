# Two entry points: `make demo` runs the main job, `make test` runs the whole suite.
# Both build the virtual environment from nothing; torch is pinned first so that pip takes the
# CPU wheel instead of resolving a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH := torch==2.13.0

.PHONY: demo test venv test-env system-tools datasets compiler bench reproduce clean

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

# Debian packages: ngspice (version 39) and chromium (headless, for the report) the tests drive,
# Fashion-MNIST (dataset-fashion-mnist, see docs/data.md) the tests and the demo read, and gcc, which
# builds the corrector fits for this machine on first use (without it they run in torch, about 2-3x
# slower; neurodtco.correction.native). Each is installed
# only when missing, with one `apt-get update` for all of them; APT="sudo apt-get" where not root.
APT ?= apt-get
FASHION_MNIST_DIR ?= $(or $(NEURODTCO_FASHION_MNIST_DIR),/usr/share/datasets/fashion-mnist)
installed.ngspice := command -v ngspice
installed.chromium := command -v chromium
installed.dataset-fashion-mnist := test -d $(FASHION_MNIST_DIR)
installed.gcc := command -v gcc

# $(call apt_ensure,PACKAGES): install those of PACKAGES whose installed.PACKAGE check fails.
define apt_ensure
	@missing=""; \
	$(foreach p,$(1),$(installed.$(p)) >/dev/null 2>&1 || missing="$$missing $(p)";) \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		$(APT) update -q && DEBIAN_FRONTEND=noninteractive $(APT) install -y -q $$missing; \
	fi
endef

system-tools:
	$(call apt_ensure,ngspice chromium dataset-fashion-mnist gcc)

datasets:
	$(call apt_ensure,dataset-fashion-mnist)

compiler:
	$(call apt_ensure,gcc)

demo: venv datasets compiler
	$(VENV)/bin/neurodtco demo

test: test-env
	$(PY) -m pytest -n 2 -q

bench: test-env
	$(PY) bench/engine.py

# Every published table of docs/ from its script (about two hours on 2 cores; not part of `make test`).
reproduce: test-env
	$(PY) examples/reproduce.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
