# The two commands a newcomer runs (see README): `make play` and `make test`.
# Both install into .venv first; torch==2.13.0 goes in before anything that depends on it,
# so that pip takes the CPU wheel instead of pulling a multi-GB CUDA build.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: play test

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[app,train,dev,web,onnx,datasets]"
	touch $@

play: $(VENV)/.installed
	$(PY) app.py

# The browser tests drive Debian's chromium: install it where we are allowed to (CI runs as root).
test: $(VENV)/.installed
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; fi
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest
