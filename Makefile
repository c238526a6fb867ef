# The two set-up commands of the README:  `make book`  and  `make test`.
# Both create the virtual environment .venv on first use (Python 3.11, pinned dependencies).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PROFILE ?= quick

.PHONY: book test benchmark env clean-book mathjax

env: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# MathJax served from the build itself (the book works offline): the SVG bundle of MathJax 3 from
# the pinned django-static-mathjax wheel (Apache-2.0), copied into book/_static (not committed).
MATHJAX := book/_static/mathjax/tex-svg.js
$(MATHJAX): $(STAMP)
	mkdir -p $(dir $@)
	$(VENV)/bin/python -c "import mathjax, pathlib, shutil; shutil.copy(pathlib.Path(mathjax.__path__[0]) / 'static/mathjax/es5/tex-svg.js', '$@')"

mathjax: $(MATHJAX)

# Execute stale notebooks with Papermill (profile $(PROFILE)), then `jupyter-book build book`.
book: $(STAMP) $(MATHJAX)
	$(VENV)/bin/sedge book --profile $(PROFILE)

# Unit tests plus every chapter source executed by Papermill under the "ci" profile defaults.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

# Speed and memory benchmarks (on demand, never in CI).
benchmark: $(STAMP)
	$(VENV)/bin/python -m pytest tests/benchmarks --benchmarks -s -q

clean-book:
	rm -rf _build book/_build
