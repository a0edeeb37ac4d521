# Two commands: `make demo` runs the main job on the digital twin, `make test` runs every test.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# A CPU build of torch lies on disk on the lab's build machines; use it where it is, so a fresh
# set-up does not pull a multi-GB CUDA build. Elsewhere pip resolves torch as usual.
TORCH_WHEELS ?= /opt/wheels
DEMO_OUT ?= out/demo

# The top-level folders are the shearlab.<folder> packages (setup.py); mypy finds them under these links.
TYPECHECK_ROOT := .typecheck/shearlab
PACKAGES := devices protocols orchestrator datasets training

.PHONY: readme-results demo test lint typecheck install install-test clean realism-report

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) install --upgrade --quiet pip
	if ls $(TORCH_WHEELS)/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then \
		$(PIP) install --quiet --find-links $(TORCH_WHEELS) torch==2.13.0; fi

# The demo trains the CNN: the train extra (torch) comes with it.
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml setup.py
	$(PIP) install --quiet -e '.[train]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e '.[train,test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(VENV)/bin/shearlab demo --out $(DEMO_OUT)

# The README's demo results, from the last `make demo` run (never typed by hand).
readme-results: $(VENV)/.installed
	$(PY) -m shearlab.orchestrator.readme_results $(DEMO_OUT) README.md docs/figures

# How hard the twin's lab is: a small campaign on every block, measured; the report is kept in docs/.
realism-report: $(VENV)/.installed
	$(VENV)/bin/shearlab twin realism --out out/realism
	cp out/realism/realism.md docs/realism.md

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .

typecheck: $(VENV)/.installed-test
	@mkdir -p $(TYPECHECK_ROOT)
	@for package in $(PACKAGES); do ln -sfn ../../$$package $(TYPECHECK_ROOT)/$$package; done
	@ln -sfn ../../shearlab/__init__.py $(TYPECHECK_ROOT)/__init__.py
	$(VENV)/bin/mypy -p shearlab

test: lint typecheck
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache .typecheck
