# Two commands on a fresh machine with Python 3.11 and make:
#   make demo   - venv, pinned deps, a demo lake with planted attacks, verified
#   make test   - the same set-up, then lint, types and the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint types pytest bench clean venv notebook
JUPYTERLAB := jupyterlab==4.6.6
# The dashboard's real-browser test drives Debian's chromium (Playwright cannot download one here).
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[all,dev,scale]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/auditlake demo --force
	@echo "(the auditlake command is in .venv: run 'source .venv/bin/activate' first)"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# Test folders type-checked (strict), each in its own mypy run: every folder has a conftest.py,
# and one run would see them all as the same module `conftest`. The top-level tests/*.py last.
TEST_TYPED_DIRS := lake cli detect tui dashboards notebooks ingest
types: $(STAMP)
	$(VENV)/bin/mypy
	for d in $(TEST_TYPED_DIRS); do \
	  MYPYPATH=tests:tests/$$d $(VENV)/bin/mypy --strict --no-namespace-packages \
	    --cache-dir .mypy_cache/tests-$$d tests/$$d || exit 1; \
	done
	MYPYPATH=tests $(VENV)/bin/mypy --strict --cache-dir .mypy_cache/tests tests/*.py

pytest: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest -n 2 --dist loadfile

$(CHROMIUM):
	$(SUDO) apt-get install -y chromium || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

test: lint types pytest

bench: $(STAMP)
	$(PY) -m benchmarks

notebook: $(STAMP)
	@$(PY) -c "import jupyterlab" 2>/dev/null || $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt '$(JUPYTERLAB)'
	@test -d auditlake-data || $(VENV)/bin/auditlake --lake auditlake-data demo
	AUDITLAKE_LAKE="$(CURDIR)/auditlake-data" $(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf $(VENV) auditlake-data .pytest_cache .mypy_cache .ruff_cache .hypothesis
