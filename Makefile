# B-MoE: `make test` and `make demo` do all of their own set-up on a fresh machine.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)
# Tests and the gas report launch their own anvil on this port; 8545 is left to `make deploy`'s long-lived chain
# so that a test run never snapshots and reverts a user's chain.
BMOE_ANVIL_PORT ?= 8555
export BMOE_ANVIL_PORT

.PHONY: help setup toolchain solc networks compile test deploy gas demo clean

help:
	@echo "make setup    create .venv, install Python and npm dependencies, register solc"
	@echo "make test     run the whole suite (does its own set-up)"
	@echo "make deploy   deploy the contracts to a local anvil (started if none runs) and write deployments/<chain-id>.json"
	@echo "make gas      measure gas and rewrite docs/gas.md"
	@echo "make demo     the main job: train, quantise, publish and verify a model on a local network"

$(BIN)/python:
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, pinned, so that nothing pulls the multi-GB CUDA build on CPU-only machines.
$(VENV)/.installed: pyproject.toml $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# `npm install` honours the committed lock; `npm ci` refuses it because the registry lacks some of
# anvil's optional platform packages, which the lock therefore omits.
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund
	touch $@

# Re-registered on every run, not stamped: the wrapper in ~/.solcx points at one checkout's tools/, and the
# checkout that registered it last may since have been deleted (a temporary clone), which breaks every other one.
solc: $(VENV)/.installed node_modules/.installed
	@$(BIN)/python tools/install_solc.py

# brownie reads network definitions only from ~/.brownie/network-config.yaml: declare bmoe-local and the testnets.
networks: $(VENV)/.installed
	$(BIN)/python tools/brownie_networks.py

setup toolchain: $(VENV)/.installed node_modules/.installed solc networks

compile: toolchain
	brownie compile

test: toolchain
	brownie test -p no:cacheprovider

deploy: toolchain
	$(BIN)/python tools/local_chain.py --ensure
	$(BIN)/python scripts/deploy.py --network bmoe-local

gas: toolchain
	$(BIN)/python scripts/gas_report.py

demo: toolchain
	$(BIN)/python tools/demo.py

clean:
	rm -rf build reports .hypothesis
