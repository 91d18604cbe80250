# The two set-up commands of the README. VENV can point at another virtual environment.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test install

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Command 1: install, then run the main job on the built-in default (synthetic data, CPU).
demo: install
	$(VENV)/bin/archlab search --space interleave

# Command 2: install, then run the tests.
test: install
	$(VENV)/bin/pytest -q -p no:cacheprovider tests
