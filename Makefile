# The two commands of the README: `make demo` and `make test`. Both install what they
# need first (a .venv with pinned torch, and the system tools), then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= 2

.PHONY: install system-deps demo test test-slow test-demo test-realistic test-slurm lint clean-demo

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

system-deps:
	bash .ci/install_system_deps.sh

# The default motif database (JASPAR 2024 CORE vertebrates, from the pinned pyjaspar wheel;
# git-ignored: derived data, rebuilt byte-identically here).
MOTIF_DB := resources/motifs/JASPAR2024_CORE_vertebrates_non-redundant.meme

$(MOTIF_DB): $(VENV)/.installed
	$(VENV)/bin/crossglue motif-database --out $@

install: system-deps $(VENV)/.installed $(MOTIF_DB)

## Run the whole pipeline on the bundled simulated demo (config/config.yaml).
demo: install
	$(VENV)/bin/snakemake --cores $(CORES) --profile profiles/local

## The default test suite (unit tests and the tiny pipeline run); Chromium renders the report.
test: install
	bash .ci/install_chromium.sh
	$(VENV)/bin/ruff check src workflow tests bench
	$(VENV)/bin/ruff format --check src workflow tests bench
	$(PY) -m pytest

## Demo-scale suites, run explicitly by CI.
test-slow: install
	$(PY) -m pytest -m slow

## The whole pipeline on the demo, scored against the simulator's truth (about 8 min).
## CROSSGLUE_DEMO_RUN=. scores the run `make demo` left here instead of running a new one.
test-demo: install
	bash .ci/install_chromium.sh
	$(PY) -m pytest -m demo -s

## The whole pipeline on the `realistic` simulator preset, every figure of
## `python -m crossglue.simulate.score` printed; asserts only that each is computed or NA
## with a reason. CROSSGLUE_REALISTIC_RUN=DIR scores a finished run instead of running one.
test-realistic: install
	$(PY) -m pytest -m realistic -s

## A real single-node SLURM cluster on this machine runs the tiny demo through sbatch.
test-slurm: install
	bash .ci/install_slurm.sh
	$(PY) -m pytest -m slurm

lint: install
	$(VENV)/bin/ruff check src workflow tests bench
	$(VENV)/bin/ruff format --check src workflow tests bench
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules

clean-demo:
	rm -rf results demo logs benchmarks .snakemake
