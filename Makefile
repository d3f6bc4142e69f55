# One entry point for a fresh Debian machine: `make run` and `make test` install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Run-time: speech output, audio I/O, the broker (and openssl for its CA), a phone's GPS
# daemon. Test-time: flite voices, sox, human recordings, a browser for the web console.
APT_PACKAGES := espeak-ng libportaudio2 alsa-utils mosquitto openssl python3-venv gpsd \
	flite sox pocketsphinx-testdata chromium chromium-driver

.PHONY: install system-deps run broker test lint bench clean

install: system-deps $(VENV)/.installed

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

run: install
	$(BIN)/senior-assistant run $(ARGS)

# The project's Mosquitto: TLS with a local CA, an account per party, least-privilege ACL.
broker: install
	$(BIN)/care-broker run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

# `make bench BASELINE=bench/results/bench-<date>.json` adds the ratio to that earlier run;
# BENCH_ARGS passes more options (`--only NAME`, `--seed N`, `--households N`, `--all`).
bench: install
	$(BIN)/python -m bench $(if $(BASELINE),--baseline $(BASELINE)) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache bench/results
