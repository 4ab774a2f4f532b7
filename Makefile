# trayecto developer entry points. `make test` is the one test command (CI runs it via .ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# Steps of `make test` run strictly in order and stop at the first failure, even under -j.
.NOTPARALLEL:

VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
NATIVE      := $(VENV)/.native
# the modules scripts/build_native.py compiles live in commerce (trayecto.kernel.native)
NATIVE_SRC  := $(wildcard src/trayecto/commerce/*.py) src/trayecto/kernel/native.py \
               scripts/build_native.py
PYTEST_ARGS ?= -n 2 -q
# benchmarks/ may not exist yet in a fresh clone; ruff errors on missing paths.
LINT_PATHS  := $(wildcard src tests benchmarks)
SYSDEPS     := scripts/install-system-deps.sh

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_ROOT_USER_ACTION := ignore

.PHONY: help install native native-clean system-deps demo lint typecheck contracts test-sqlite test-postgres \
        test bench clean

help:
	@echo "make install        create .venv and install trayecto with dev extras (idempotent)"
	@echo "make native         compile the placing path with mypyc (part of install)"
	@echo "make native-clean   remove the compiled modules (pure Python)"
	@echo "make demo           load sample data and serve on http://127.0.0.1:8000 (Ctrl-C stops)"
	@echo "make test           lint, typecheck, contracts, tests on SQLite, tests on PostgreSQL"
	@echo "make lint | typecheck | contracts | test-sqlite | test-postgres   one step of make test"
	@echo "make bench          run benchmarks/run_all.py (needs Debian wrk; installed as root)"
	@echo "make clean          remove var/ and caches"

# --- environment --------------------------------------------------------------------------

install: $(STAMP) $(NATIVE)

$(PY):
	python3 -m venv $(VENV)

# Reinstall only when pyproject.toml changes (or the stamp is removed).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $@

# The placing path compiled with mypyc (trayecto.kernel.native); again whenever a commerce
# source changes. TRAYECTO_PURE_PYTHON=1 builds nothing and removes what was built.
native: $(NATIVE)

$(NATIVE): $(NATIVE_SRC) $(STAMP)
	$(PY) scripts/build_native.py
	if [ "$${TRAYECTO_PURE_PYTHON:-}" = 1 ]; then rm -f $@; else touch $@; fi

native-clean:
	$(PY) scripts/build_native.py --clean
	rm -f $(NATIVE)

# Debian packages the tests need; apt-get runs only if something is missing (see the script).
system-deps:
	@bash $(SYSDEPS) postgresql chromium

# --- run ----------------------------------------------------------------------------------

demo: install
	$(VENV)/bin/trayecto demo

# --- checks -------------------------------------------------------------------------------

lint: install
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

typecheck: install
	$(VENV)/bin/mypy

contracts: install
	$(VENV)/bin/lint-imports

test-sqlite: install
	@echo "==> tests on SQLite"
	env -u TRAYECTO_TEST_DATABASE_URL $(VENV)/bin/pytest $(PYTEST_ARGS)

test-postgres: install
	@echo "==> tests on PostgreSQL"
	bash scripts/with-postgres.sh $(VENV)/bin/pytest $(PYTEST_ARGS)

# Order matters and make stops at the first failure; the last line printed is pytest's
# summary for the PostgreSQL run.
test: install system-deps lint typecheck contracts test-sqlite test-postgres

# --- benchmarks ---------------------------------------------------------------------------

bench: install
	@bash $(SYSDEPS) wrk
	$(PY) benchmarks/run_all.py

# --- housekeeping -------------------------------------------------------------------------

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache \
	       build dist src/*.egg-info
	$(PY) scripts/build_native.py --clean 2>/dev/null || true
	rm -f $(NATIVE)
	find . -path ./.venv -prune -o -path ./.git -prune -o \
	       -type d -name __pycache__ -exec rm -rf {} +
