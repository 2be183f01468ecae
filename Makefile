# Scaling-law workbench. `make` lists the targets; `make sweep` and `make test` work on a fresh clone.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
SWEEP   ?= default
JOBS    ?=
WORKERS ?= 1
BUDGET  ?= 100k
HORIZON ?= 1
CELL    ?=
FORCE   ?=
PORT    ?= 8080
# a smoke trial trains a tiny model: its files say so and never overwrite a real trial's
TRIAL_NAME = 02_train_trial_$(BUDGET)_h$(HORIZON)$(if $(SMOKE),_smoke)
# where data/, outputs/ and reports/ live (tests move them with WORKBENCH_ROOT)
OUTROOT := $(or $(WORKBENCH_ROOT),$(CURDIR))
TESTTMP ?= $(CURDIR)/outputs/.test
# pytest-xdist processes (by file); the notebooks then run in order
TEST_WORKERS ?= 2

.PHONY: help setup data trial sweep ablation worker status final holdout report prune regenerate lab dashboard bench calibrate \
        test lint clean clean-data

help: ## show this list of targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-11s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.txt pyproject.toml environment.yml
	@if [ ! -x $(PY) ] && command -v conda >/dev/null 2>&1; then \
	  echo "conda found: creating $(VENV) from environment.yml"; \
	  conda env create --prefix $(VENV) --file environment.yml --yes; \
	else \
	  [ -x $(PY) ] || python3.11 -m venv $(VENV) 2>/dev/null || python3 -m venv $(VENV); \
	  $(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt; \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps -e .
	@touch $@

setup: $(STAMP) ## build .venv (conda when available, else pip); a no-op when nothing changed

data: setup ## run notebooks/01_data_prep.ipynb headless on the shipped data (copy under outputs/)
	@mkdir -p $(OUTROOT)/outputs/data_prep
	$(PY) -m papermill notebooks/01_data_prep.ipynb $(OUTROOT)/outputs/data_prep/01_data_prep.ipynb \
	  --cwd . --no-progress-bar

trial: setup ## one trial, looked at closely: make trial BUDGET=100k HORIZON=1 [SMOKE=1]
	@$(PY) -m lib.run.trial_args --budget '$(BUDGET)' --horizon '$(HORIZON)'
	@mkdir -p $(OUTROOT)/outputs/trials
	$(PY) -m papermill notebooks/02_train_trial.ipynb \
	  $(OUTROOT)/outputs/trials/$(TRIAL_NAME).ipynb \
	  --cwd . --no-progress-bar -p budget $(BUDGET) -p horizon $(HORIZON) $(if $(SMOKE),-p smoke True)
	$(PY) -c "from lib.run.notebook import render_html as r; from lib.reports.index import write_index; \
	  from lib.core import paths; name = '$(TRIAL_NAME)'; \
	  print(r(paths.OUTPUTS / 'trials' / f'{name}.ipynb', paths.REPORTS / 'trials' / f'{name}.html', \
	  hide_code=False)); write_index()"

sweep: setup ## run the grid, final evaluation and report: make sweep [SWEEP=default] [JOBS=N] [WORKERS=N] [FORCE=1]
	$(PY) -m lib.run.sweep run --sweep $(SWEEP) $(if $(JOBS),--jobs $(JOBS)) --workers $(WORKERS) $(if $(FORCE),--force)

ablation: setup ## input normalisations x feature sets, chosen on validation: make ablation [SWEEP=inputs]
	$(PY) -m lib.run.ablation --sweep $(if $(filter default,$(SWEEP)),inputs,$(SWEEP)) $(if $(JOBS),--jobs $(JOBS))

worker: setup ## join a sweep's studies as one more worker: make worker SWEEP=... [CELL=1M-h1]
	$(PY) -m lib.run.sweep worker --sweep $(SWEEP) $(if $(CELL),--cell $(CELL))

status: setup ## per-cell progress from storage and records: make status SWEEP=...
	$(PY) -m lib.run.sweep status --sweep $(SWEEP)

final: setup ## multi-seed test evaluation of every cell: make final SWEEP=...
	$(PY) -m lib.run.sweep final --sweep $(SWEEP)

holdout: setup ## score a sweep's declared holdout block, once, after make final: make holdout SWEEP=...
	$(PY) -m lib.run.holdout --sweep $(SWEEP)

report: setup ## execute and render the scaling report: make report [SWEEP=default]
	$(PY) -m lib.run.sweep report --sweep $(SWEEP)

prune: setup ## move aside the cells a sweep file no longer names (orphans): make prune SWEEP=...
	$(PY) -m lib.run.sweep prune --sweep $(SWEEP)

regenerate: setup ## rebuild every record file of a sweep from its Optuna storage
	$(PY) -m lib.run.sweep regenerate --sweep $(SWEEP)

lab: setup ## JupyterLab on 127.0.0.1 (with a token), opened in notebooks/
	@if [ "$$(id -u)" = 0 ]; then echo "note: running as root (a container or cloud box): \
	JupyterLab is started with --allow-root; it still listens on 127.0.0.1 only"; fi
	$(PY) -m jupyter lab --ip 127.0.0.1 --no-browser $(if $(filter 0,$(shell id -u)),--allow-root) \
	  --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/notebooks

dashboard: setup ## optuna-dashboard on 127.0.0.1 (no login), read-only unless WRITE=1: make dashboard SWEEP=...
	$(PY) -m lib.run.sweep dashboard --sweep $(SWEEP) --port $(PORT) $(if $(WRITE),--write)

calibrate: setup ## coverage of the paired intervals on simulated dependent test days -> outputs/calibration/
	$(PY) -m lib.analysis.calibrate $(CALIBRATEFLAGS)

bench: setup ## throughput, MFU, batched speed-up, stages -> outputs/bench/<timestamp>.json [AGAINST=commit]
	$(PY) -m lib.bench $(BENCHFLAGS) $(if $(AGAINST),--against $(AGAINST))

test: setup ## run the tests, then every notebook in smoke mode under nbval
	rm -rf $(TESTTMP) && mkdir -p $(TESTTMP)/nb
	for nb in notebooks/*.ipynb; do \
	  $(PY) -m papermill --prepare-only "$$nb" "$(TESTTMP)/nb/$$(basename $$nb)" -p smoke True >/dev/null 2>&1 \
	    || { echo "papermill could not prepare $$nb"; exit 1; }; \
	done
	WORKBENCH_ROOT=$(TESTTMP)/root $(PY) -m pytest tests -p no:cacheprovider \
	  -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	WORKBENCH_ROOT=$(TESTTMP)/root $(PY) -m pytest $(TESTTMP)/nb --nbval-lax -p no:cacheprovider \
	  $(PYTEST_ARGS)

lint: setup ## ruff over lib, tests, notebooks and bench scripts
	$(VENV)/bin/ruff check lib tests notebooks bench

clean: ## remove generated outputs and reports (never raw data or manifests)
	find outputs reports -mindepth 1 ! -name .gitkeep -exec rm -rf {} +

clean-data: ## remove processed and raw data and manifests (asks first)
	@read -p "delete data/raw, data/processed and both manifests? [y/N] " ok; \
	if [ "$$ok" = y ]; then rm -rf data/raw data/processed data/*_manifest.json; echo removed; else echo kept; fi
