# nngeom: `make demo` (the main job), `make test` (the test suite), `make bench` (benchmarks),
# `make paper` (the published paper-scale run, results/paper/).
# Works on a machine with nothing but Python 3.10+: the venv is created on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
OUT    ?= runs/demo
SCALE  ?= quick

.PHONY: demo paper test bench lint data browser clean docs

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: $(PY) pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e ".[chaos]"
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	touch $@

# Fashion-MNIST comes from Debian's dataset-fashion-mnist; without apt (or root) the studies fall back
# to sklearn's bundled digits and say so in the report.
data:
	@if [ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) || \
	  echo "note: could not install dataset-fashion-mnist; studies will use sklearn digits"; \
	else echo "note: dataset-fashion-mnist is not installed and apt is unavailable; studies will use sklearn digits"; fi

# Headless Chromium for the report test (skipped, with a reason, where it cannot be installed).
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1)) || \
	  echo "note: could not install chromium; the browser test will be skipped"; \
	else echo "note: chromium unavailable; the browser test will be skipped"; fi

demo: $(VENV)/.runtime data
	$(VENV)/bin/nngeom reproduce all --scale $(SCALE) --out $(OUT) --resume
	@echo "report: $(abspath $(OUT))/report.html"

# The published paper-scale run (results/paper/, committed): all five studies at --scale paper,
# resumable (an interrupted `make paper` continues where it stopped); at most an hour a study on
# 2 cores.
PAPER_OUT ?= results/paper
paper: $(VENV)/.runtime data
	$(VENV)/bin/nngeom reproduce all --scale paper --out $(PAPER_OUT) --resume
	@echo "report: $(abspath $(PAPER_OUT))/report.html"

test: $(VENV)/.dev data browser
	$(PY) -m pytest -q -m "not slow"

# The documentation site: docs/_build/html/index.html (warnings are errors; the gallery's
# examples run at full size; NNGEOM_QUICK=1 make docs builds it in quick mode).
DOCS_OUT ?= docs/_build/html
$(VENV)/.docs: $(VENV)/.runtime
	$(PIP) install -q -c constraints.txt -e ".[docs]"
	touch $@

docs: $(VENV)/.docs data
	$(PY) -m sphinx -W --keep-going -q -b html docs $(DOCS_OUT)
	@echo "site: $(abspath $(DOCS_OUT))/index.html"

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: $(VENV)/.dev data
	NNGEOM_FUZZ_REPORT=benchmarks/results/fuzz.json $(PY) -m pytest -q -m slow
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .hypothesis
