# The two commands: `make lab` and `make test`. Everything installs on first use.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.installed
PORT ?= 7777

.PHONY: lab test install bench fuzz soak stubs docs clean

# Widget front ends and the JupyterLab extension: npm ci when the lock changes, the build
# (the same `npm run build` the wheel's build hook runs) when a source changes.
JS_STAMP := jumpstarter_jupyter/jupyter/static/.built
JS_MODULES := labextension/node_modules/.package-lock.json

$(JS_MODULES): labextension/package-lock.json
	cd labextension && npm ci --no-audit --no-fund

$(JS_STAMP): $(JS_MODULES) labextension/package.json labextension/build.mjs $(wildcard labextension/src/*.js labextension/src/widgets/*.js)
	cd labextension && npm run --silent build
	touch $@

# After the front-end build: the editable install copies the built extension into the venv
# (share/jupyter/labextensions), and its build hook finds the build current.
$(STAMP): pyproject.toml $(JS_STAMP)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

# JupyterHub's proxy for the shared-lab tests (tests/hub), pinned by its own lock.
HUB_PROXY := tests/hub/node_modules/.package-lock.json

$(HUB_PROXY): tests/hub/package-lock.json
	cd tests/hub && npm ci --no-audit --no-fund

# The browser tests drive Debian's Chromium (never a browser download).
/usr/bin/chromium:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

# A real TFTP client for the hosted upstream TFTP driver's test (tests/upstream/test_hosted.py).
/usr/bin/tftp:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tftp-hpa

# The QEMU board's guests: QEMU, and what `jumpstarter-jupyter qemu-images` builds them with.
/usr/bin/qemu-system-x86_64:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	  qemu-system-x86 qemu-system-arm busybox-static cpio

# SnmpPower's tests and benchmark run a private net-snmp agent (never the machine's own).
/usr/sbin/snmpd:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends snmpd
# The debugger tests attach a real gdb to the QEMU board's gdbstub (through forward()).
/usr/bin/gdb-multiarch:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gdb-multiarch

# Screens: OCR for expect_text, and ustreamer for the UStreamer driver (run without a capture device).
/usr/bin/tesseract /usr/bin/ustreamer:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tesseract-ocr ustreamer

# The bmap flashing tests make their block maps with Debian's bmaptool (bmap-tools).
/usr/bin/bmaptool:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bmap-tools

install: $(STAMP)

test: install /usr/bin/chromium /usr/bin/qemu-system-x86_64 /usr/sbin/snmpd /usr/bin/gdb-multiarch /usr/bin/bmaptool /usr/bin/tftp \
      /usr/bin/tesseract /usr/bin/ustreamer $(HUB_PROXY)
	$(PY) -m pytest $(PYTEST_ARGS)

# Generated bad input against a real exporter: 10 000 cases per property (make test runs a quick pass).
fuzz: install
	JMP_FUZZ_EXAMPLES=$(or $(EXAMPLES),10000) $(PY) -m pytest -q tests/exporter/test_fuzz.py

# 64 clients mixing calls and streams on one exporter for 10 minutes; reports threads, fds, RSS.
soak: install
	$(PY) benchmarks/soak.py $(SOAK_ARGS)

# The documentation site into docs/_build/html: warnings are errors, every cross-reference must
# resolve, and nothing is fetched (tests/test_docs.py runs the same build in make test).
docs: install
	$(PY) -m sphinx -W --keep-going -n -q -b html docs docs/_build/html

stubs: install
	$(PY) scripts/gen_protos.py

# Side-by-side performance against upstream 0.9.0 and raw grpcio (QUICK=1: a one-minute harness check).
bench: install /usr/bin/chromium /usr/bin/qemu-system-x86_64 /usr/bin/gdb-multiarch /usr/bin/bmaptool
bench: install /usr/bin/bmaptool /usr/bin/qemu-system-x86_64 /usr/bin/gdb-multiarch /usr/sbin/snmpd
	$(PY) benchmarks/run.py $(if $(QUICK),--quick) $(BENCH_ARGS)

lab: install
	@echo "virtual board on 127.0.0.1:$(PORT); JupyterLab opens notebooks/bringup.ipynb"
	$(VENV)/bin/jumpstarter-jupyter demo --listen 127.0.0.1:$(PORT) & \
	  trap "kill $$!" EXIT; \
	  JUMPSTARTER_HOST=127.0.0.1:$(PORT) $(VENV)/bin/jupyter lab --allow-root --ip=127.0.0.1 notebooks/bringup.ipynb

clean:
	rm -rf $(VENV)
