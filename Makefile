# Two entry points for a fresh machine: `make book` and `make test`.
# Both create (or reuse) .venv and install the project into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.normtest-installed
PYTEST_ARGS ?=

.PHONY: install test book lab smoke clean-runs

install: $(STAMP)

# Reinstall when the package metadata changes; the stamp records a finished install.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (normtest .venv)" >/dev/null
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

book: $(STAMP)
	$(BIN)/normtest book --run-smoke

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean-runs:
	rm -rf runs/
