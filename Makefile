# robstudy: two commands on a fresh machine.
#   make study   create .venv, install, run the default study, render its report (prints the report's path)
#   make course  render the course's lessons into reports/course/ (ARGS="--quick 01 02" for some, quickly)
#   make test    create .venv, install, run the tests (nbdev_test over the notebooks, then pytest), within 5 minutes
#   make test-slow  the exhaustive end-to-end tests `make test` leaves out (make test-full: both)
#   make gpu-wheels  put into .whl/ what a GPU machine without a package index lacks (then, there: make gpu-check)
#   make docs    render every notebook (chapters executed, the course, the report notebooks) into an offline site in _docs/
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# re-install when the packaging or the dependencies change
STAMP := $(VENV)/.installed-$(shell cat settings.ini setup.py pyproject.toml constraints.txt | sha1sum | cut -c1-10)
ARGS ?=

.PHONY: install study report course docs test test-slow test-full test-notebooks test-pytest bench clean-runs published gpu-wheels gpu-check

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the tested versions of torch, torchvision and timm (constraints.txt), then robstudy with what it needs
	$(BIN)/python -m pip install -q -c constraints.txt torch torchvision
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

study: install
	$(BIN)/robstudy study $(ARGS)

report: install
	$(BIN)/robstudy report $(ARGS)

course: install
	$(BIN)/robstudy course $(ARGS)

# the chapters run as nbdev_test runs them (IN_TEST=1) and the lessons in quick mode; DOCS_QUICK=0 for the full size
DOCS_QUICK ?= 1
docs: install
	$(BIN)/python -c 'from robstudy.reports import build_docs; build_docs("nbs", "_docs", quick=bool($(DOCS_QUICK)), strict=True)'
	@echo "docs: _docs/index.html"

# nbdev_test runs every notebook's tests; pytest then skips its per-notebook cases if they all passed
# (so each notebook runs once), and re-runs them, to list the failures in its summary, if they did not.
# `make test` leaves out the tests marked slow (the exhaustive end-to-end cases: every lesson, every crash point,
# both sweep launchers, the GPU check's dry run, ...) to stay within 5 minutes; `make test-slow` runs those,
# `make test-full` both. CI (.ci/run) runs both. The chapters' examples write their scratch folders under a
# temporary TMPDIR that is removed afterwards (nothing is left in /tmp). Each test worker's torch uses one thread
# (2 workers on 2 cores).
PYTEST := OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile
test: install
	@tmp=$$(mktemp -d); if TMPDIR=$$tmp OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --do_print; then passed=1; else passed=0; fi; \
	rm -rf $$tmp; ROBSTUDY_NBDEV_TESTED=$$passed $(PYTEST) -m "not slow" --durations=12 tests

test-slow: install
	ROBSTUDY_NBDEV_TESTED=1 $(PYTEST) -m slow --durations=12 tests

test-full: test test-slow

bench: install
	for b in benchmarks/*.py; do [ $$b = benchmarks/gpu_check.py ] && continue; echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-runs:
	rm -rf runs

# rebuild the published tables shipped in robstudy/published_tables/ from a folder of the released files
# (laid out as robstudy.published.PUBLISHED records them): make published ROBSTUDY_REFERENCE=/path/to/reference-results
published: install
	@test -n "$(ROBSTUDY_REFERENCE)" || { echo "set ROBSTUDY_REFERENCE to the folder of released files"; exit 2; }
	$(BIN)/python -c "import sys; from robstudy.published import build_published; build_published(sys.argv[1], 'robstudy/published_tables')" "$(ROBSTUDY_REFERENCE)"

# The GPU check (benchmarks/gpu_check.py; README "GPU check"). Here, with a package index: `make gpu-wheels` fills .whl/
# (the wheels the GPU machine lacks, and the anchor's zoo script, ANCHOR=...). On the GPU machine, whose python has torch:
# `make gpu-check` (writes to $$OUT, else gpu-check/). `make gpu-check DRY=1`: the same steps on this CPU at tiny sizes.
ANCHOR ?= ../shared/bench/anchor_zoo.py
GPU_PYTHON ?= python3
gpu-wheels: install
	$(BIN)/python benchmarks/gpu_check.py --wheels --anchor $(ANCHOR)

ifdef DRY
gpu-check: install
	$(BIN)/python benchmarks/gpu_check.py --dry
else
gpu-check:
	$(GPU_PYTHON) benchmarks/gpu_check.py
endif
