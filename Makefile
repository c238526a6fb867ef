# The two set-up commands of the README:  `make book`  and  `make test`.
# Both create the virtual environment .venv on first use (Python 3.11, pinned dependencies).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PROFILE ?= quick

.PHONY: book test benchmark env clean-book

env: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Execute stale notebooks with Papermill (profile $(PROFILE)), then `jupyter-book build book`.
book: $(STAMP)
	$(VENV)/bin/sedge book --profile $(PROFILE)

# Unit tests plus every chapter source executed by Papermill under the "ci" profile defaults.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

# Speed and memory benchmarks (on demand, never in CI).
benchmark: $(STAMP)
	$(VENV)/bin/python -m pytest tests/benchmarks --benchmarks -s -q

clean-book:
	rm -rf _build book/_build
