# Two entry points for a fresh machine: `make book` and `make test`.
# Both create (or reuse) .venv and install the project into it first, with the exact
# versions in constraints.txt (those the tests and the book last ran with).
#   make CONSTRAINTS= install   install without them (newest releases pyproject.toml allows)
#   make upgrade                move .venv to the newest allowed releases; then make test, make book
#   make constraints            record .venv's versions into constraints.txt (after both pass)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.normtest-installed
CONSTRAINTS ?= constraints.txt
PIP_CONSTRAINTS := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
PYTEST_ARGS ?=
SHARED_DATA ?= ../shared/data
# pip byte-compiles what it installs in one process (over a minute for torch's CUDA build); instead it
# installs with --no-compile and compileall writes the same .pyc files with one process per core, in
# about 30 s. Exit status ignored: some packages ship files for other Pythons that do not compile, which
# pip skips too (torch/testing/_internal/py312_intrinsics.py).
PIP_INSTALL := $(BIN)/python -m pip install --quiet --no-compile
COMPILE := $(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true

.PHONY: install test book lab data dataset-stats clean-runs constraints upgrade device-check

install: $(STAMP)

# Reinstall when the package metadata or the constraints change; the stamp records a finished install.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PIP_INSTALL) $(PIP_CONSTRAINTS) -e ".[test]"
	$(COMPILE)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (normtest .venv)" >/dev/null
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The chapters read the real data sets' committed statistics and runs (results/), so the book needs no data/:
# `make data` is for rerunning a local profile or `make dataset-stats`.
book: $(STAMP)
	$(BIN)/normtest book --run-smoke

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

# The real data of the local profiles: ../shared/data's archives extracted into data/ (git-ignored):
# data/cifar10-jpeg/{train,test}/<class>/*.jpg and data/tiny-imagenet-200/ in its official layout.
data: data/.cifar10-jpeg.extracted data/.tiny-imagenet-200.extracted

data/.%.extracted: $(SHARED_DATA)/%.tar.gz
	@mkdir -p data
	rm -rf data/$*
	tar -xzf $< -C data
	touch $@

# The committed statistics and Table 1 of the real data (results/dataset_statistics/local/, read by
# the book), recomputed from every training image in data/: a few minutes on 2 CPU cores.
dataset-stats: $(STAMP) $(if $(wildcard $(SHARED_DATA)/*.tar.gz),data)
	$(BIN)/normtest stats imagefolder --root data/cifar10-jpeg --published cifar10 --out results/dataset_statistics/local
	$(BIN)/normtest stats tiny_imagenet_200 --root data/tiny-imagenet-200 --out results/dataset_statistics/local
	$(BIN)/normtest stats imagefolder+dim --root data/cifar10-jpeg --out results/dataset_statistics/local

# On a machine with a CUDA GPU: the CUDA-marked tests, the layer and throughput benchmarks on the device and
# one short real-data run per study, into benchmarks/results/ and results/<study>/gpu/ (about 10 minutes on
# one H100; see benchmarks/device_check.py). It needs data/cifar10-jpeg/ (make data) or its archive in data/.
# DEVICE_CHECK_ARGS="--device cpu --tiny --root /tmp/check" tries the same steps on the CPU.
DEVICE_CHECK_ARGS ?=
device-check: $(STAMP)
	$(BIN)/python benchmarks/device_check.py $(DEVICE_CHECK_ARGS)

# The newest releases pyproject.toml allows, ignoring constraints.txt.
upgrade:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PIP_INSTALL) --upgrade --upgrade-strategy eager -e ".[test]"
	$(COMPILE)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (normtest .venv)" >/dev/null
	touch $(STAMP)

# .venv's exact versions (normtest itself left out) become constraints.txt.
constraints:
	test -x $(BIN)/python || { echo "no $(VENV): run make install (or make upgrade) first" >&2; exit 1; }
	{ echo "# Exact versions the tests and the book last ran with (Python $$($(BIN)/python -c 'import platform; print(platform.python_version())'), Linux x86_64)."; \
	  echo "# Written by \`make constraints\` from $(VENV); \`make\` installs with it (\`make CONSTRAINTS= install\` without)."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v -i '^normtest[=@ ]'; } > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt

clean-runs:
	rm -rf runs/
