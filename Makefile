# The two commands: `make lab` and `make test`. Everything installs on first use.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.installed
PORT ?= 7777

.PHONY: lab test install bench stubs clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

stubs: install
	$(PY) scripts/gen_protos.py

lab: install
	@echo "virtual board on 127.0.0.1:$(PORT); JupyterLab opens notebooks/bringup.ipynb"
	$(VENV)/bin/jumpstarter-jupyter demo --listen 127.0.0.1:$(PORT) & \
	  trap "kill $$!" EXIT; \
	  JUMPSTARTER_HOST=127.0.0.1:$(PORT) $(VENV)/bin/jupyter lab --allow-root --ip=127.0.0.1 notebooks/bringup.ipynb

clean:
	rm -rf $(VENV)
