# Two commands a new user needs (see README.md):
#   make demo   set up .venv if missing, then run the main job on the embedded default data
#   make test   set up .venv if missing, then run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch's CPU build must go in before the project, or pip pulls the CUDA build (GBs).
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.fxrisk-installed

.PHONY: setup demo test report bench clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test,scale]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/main_job.py

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

report: $(STAMP)
	$(PY) scripts/forecast_report.py

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,bench]"
	$(PY) scripts/bench_data.py
	$(PY) scripts/bench_forecasters.py
	$(PY) scripts/bench_env.py
	$(PY) scripts/bench_training.py
	$(PY) scripts/bench_stress.py

clean-venv:
	rm -rf $(VENV)
