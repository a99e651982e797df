# all_nb: `make demo` and `make test` work on a fresh clone; both create .venv and install the package first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHELL := /bin/bash

.PHONY: install demo test nbtest pytest check-sync proc readme lab clean

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/all-nb demo --overwrite

test: install nbtest pytest check-sync proc

# Two notebooks at a time, one torch thread each: two cores are not oversubscribed.
nbtest: install
	OMP_NUM_THREADS=1 $(BIN)/nbdev-test --n-workers 2

pytest: install
	$(BIN)/python -m pytest -q tests

# The module must be exactly what the notebooks export, and the notebooks clean: export and clean a copy, compare.
check-sync: install
	@tmp=$$(mktemp -d) && cp -r nbs pyproject.toml all_nb $$tmp/ && \
	  (cd $$tmp && git init -q . && $(abspath $(BIN))/nbdev-export && $(abspath $(BIN))/nbdev-clean) && \
	  diff -r -x __pycache__ all_nb $$tmp/all_nb && diff -r -x .ipynb_checkpoints nbs $$tmp/nbs && \
	  $(call make_readme,$$tmp) && diff README.md $$tmp/README.md && rm -rf $$tmp && \
	  echo "module in sync with the notebooks, notebooks clean, README.md made from nbs/index.ipynb"

# README.md is nbs/index.ipynb as markdown (nbdev-readme does the same where Quarto is installed), its links
# into nbs/ rewritten so that they work from the repository root.
make_readme = $(BIN)/jupyter nbconvert --log-level WARN --to markdown nbs/index.ipynb --output-dir $(1) --output README && \
	sed -i -E 's@\]\((examples|tutorials|images)/@](nbs/\1/@g' $(1)/README.md

readme: install
	$(call make_readme,.)

proc: install
	$(BIN)/nbdev-proc-nbs

lab: install
	$(BIN)/jupyter lab nbs

clean:
	rm -rf _proc _docs runs/demo
