# Everything a fresh machine needs: `make test` and `make demo` build .venv themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test demo install clean bench sysdeps

install: $(STAMP)

# torch goes in first, pinned, so nothing later can pull a CUDA build.
$(STAMP): pyproject.toml requirements-lock.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c requirements-lock.txt -e ".[export,test]"
	touch $(STAMP)

# adb (phone benchmarks) and qemu-user-static (ARM64 emulation) come from Debian; needs root once.
sysdeps:
	@command -v qemu-aarch64-static >/dev/null && command -v adb >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq qemu-user-static adb >/dev/null) ; } || \
	  echo "warning: could not install qemu-user-static/adb (not root?): their tests will be skipped"

test: $(STAMP) sysdeps
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/edgeenhance demo -o demo_out

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
