# Every target installs what it needs on first use, so each is one command on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Function Compute's runtime layer is Python 3.10: the suite runs on it as well, where it is
# installed (on PATH, or as a pyenv version that is not the selected one).
FIND_PY310 := import sys; print(sys.executable)
PYTHON_FC ?= $(shell (python3.10 -c '$(FIND_PY310)' || PYENV_VERSION="$$(pyenv versions --bare | grep '^3\.10' | tail -1)" python3.10 -c '$(FIND_PY310)') 2>/dev/null)
VENV_FC := .venv-py310
# `make run HOST=0.0.0.0` serves the local network, so a phone can scan the QR code.
HOST := 127.0.0.1
PAGE := frontend/static/index.html
PAGE_SOURCES := $(shell find vue-app/src -type f) vue-app/index.html vue-app/vite.config.js vue-app/package-lock.json

.PHONY: install lock package system page run serve test suite test-fc-python lint bench clean

install: $(INSTALLED)

# Exactly locks/dev.txt, every file checked against its hash, in a venv made anew (so nothing
# from an earlier install stays); then dingpass itself, editable, with no dependency of its own.
$(INSTALLED): pyproject.toml locks/dev.txt
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10) and "dingpass needs Python 3.10 or newer")'
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r locks/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# After a change to pyproject.toml's dependencies; `make lock UPGRADE=flask` takes a newer flask
# (and what it needs), `make lock UPGRADE=--all` the newest of everything. locks/README.md.
# (Not after install: that would first install the locks being replaced.)
UPGRADE :=
lock:
	@test -x $(BIN)/uv || $(MAKE) --no-print-directory install
	$(BIN)/python tools/lock.py $(if $(filter --all,$(UPGRADE)),--upgrade,$(addprefix --upgrade-package=,$(UPGRADE)))

# Each function's code package for Function Compute, in build/<function>/ (s.yaml's code); with
# FUNCTIONS=frontend only that one. Bytecode is written with FC's Python 3.10, where there is one.
FUNCTIONS :=
package: $(INSTALLED) $(PAGE)
	@[ -n "$(PYTHON_FC)" ] || echo "NOTE: no python3.10 here: the packages carry no bytecode, so each cold start compiles"
	$(BIN)/python tools/package.py $(if $(PYTHON_FC),--compile-with "$(PYTHON_FC)") $(FUNCTIONS)

vue-app/node_modules/.package-lock.json: vue-app/package-lock.json
	cd vue-app && npm ci --no-audit --no-fund

page: $(PAGE)

$(PAGE): $(PAGE_SOURCES) vue-app/node_modules/.package-lock.json
	cd vue-app && npm run --silent build
	cd vue-app && npm run --silent size

FUN := tools/fun-validate/node_modules/.package-lock.json

$(FUN): tools/fun-validate/package-lock.json
	cd tools/fun-validate && npm ci --ignore-scripts --no-audit --no-fund --silent

# The machine first (Node.js with npm, for the page), then the rest, as for test.
run:
	bash tools/install-system.sh run
	@$(MAKE) --no-print-directory serve

serve: $(INSTALLED) $(PAGE)
	$(BIN)/dingpass dev --host $(HOST)

# Debian's chromium and a CJK font, Node.js, a running MariaDB: installed or started when
# missing, or a stop with the command to run (the same script CI runs, through `make test`).
system:
	bash tools/install-system.sh

# The machine first, then the rest (a recursive make, so that -j cannot start them together).
test: system
	@$(MAKE) --no-print-directory suite

suite: lint $(PAGE) $(FUN)
	PYTHON_FC="$(PYTHON_FC)" $(BIN)/python -m pytest
	@if [ -n "$(PYTHON_FC)" ]; then $(MAKE) --no-print-directory test-fc-python PYTHON_FC="$(PYTHON_FC)"; \
	else echo "NOTE: no python3.10 here: the suite did not run on Function Compute's Python"; fi

$(VENV_FC)/.installed: pyproject.toml locks/dev.txt
	$(PYTHON_FC) -m venv --clear $(VENV_FC)
	$(VENV_FC)/bin/python -m pip install --quiet --require-hashes -r locks/dev.txt
	$(VENV_FC)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

test-fc-python: $(VENV_FC)/.installed $(PAGE) $(FUN)
	$(VENV_FC)/bin/python -m pytest -p no:cacheprovider

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(INSTALLED)
	$(BIN)/python bench/license_bench.py
	$(BIN)/python bench/e2e_latency.py
	$(BIN)/python bench/changes_bench.py
	$(BIN)/python bench/codes_bench.py
	$(BIN)/python bench/burst.py
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/proxy_hop.py
	$(BIN)/python bench/cold_start.py

clean:
	rm -rf $(VENV) $(VENV_FC) build var test-artifacts frontend/static vue-app/node_modules tools/fun-validate/node_modules
