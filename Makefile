# Two commands do all the set-up (see README):
#   make quickstart   build .venv if needed, then run the offline quickstart benchmark
#   make test         build .venv if needed, then run the test suite
VENV ?= .venv

.PHONY: setup quickstart test

setup:
	VENV=$(VENV) ./scripts/setup.sh

quickstart: setup
	$(VENV)/bin/harness run benchmarks/quickstart.yaml

test: setup
	$(VENV)/bin/python -m pytest -q -n auto
