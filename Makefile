# Switchboard developer commands. Needs only python3.11 and pip.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PROTOS := $(shell find protos -name '*.proto')

.PHONY: run test bench bench-peers chaos soak lint protos lock clean images

# Bring the whole local stack up (simulator, auth, router, edge) with a demo key.
run: $(VENV)/.built
	$(PY) -m switchboard_stack

# Run the whole test suite (lint and type checks first).
test: lint
	$(PY) -m pytest

# Scenarios A-G of issue 20: the gateway, a bare forwarder and the simulator straight, in one run (a table and JSON).
bench: $(VENV)/.built
	$(PY) -m switchboard_stack.bench

# A-C against the gateway, the bare forwarder and LiteLLM's proxy (installed once under .cache/bench-peers).
bench-peers: $(VENV)/.built
	$(PY) -m switchboard_stack.bench_peers

# Two edges behind a balancer, two auth and two router replicas on the machine's PostgreSQL and Redis (a schema
# and key namespace of their own, through fault proxies): every fault one at a time, then all together, under a
# mixed load; what must hold is checked and printed per fault (switchboard_stack.chaos).
chaos: $(VENV)/.built
	$(PY) -m switchboard_stack.chaos

# The same topology under a moderate load with random faults for SOAK_MINUTES (default 30): RSS, open files and
# latency must stay flat.
SOAK_MINUTES ?= 30
soak: $(VENV)/.built
	$(PY) -m switchboard_stack.chaos.soak --minutes $(SOAK_MINUTES)

PACKAGES := services/common/switchboard_common services/edge/switchboard_edge services/auth/switchboard_auth \
	services/router/switchboard_router simulator/switchboard_simulator tools/switchboard_stack \
	operator/switchboard_operator

lint: $(VENV)/.built
	$(VENV)/bin/ruff check .
	# No incremental cache: a stale one has reported attributes missing that are there (it takes seconds anyway).
	$(VENV)/bin/mypy --cache-dir=/dev/null $(PACKAGES)

protos: gen/.stamp

$(VENV)/.deps: requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.lock
	touch $@

gen/.stamp: $(VENV)/.deps $(PROTOS)
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	find gen -type d -exec touch {}/__init__.py \;
	rm -f gen/__init__.py
	touch $@

$(VENV)/.built: $(VENV)/.deps gen/.stamp
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# The one image every service runs from (Dockerfile); skipped where Docker is missing or not running.
IMAGE ?= switchboard:dev
DOCKER ?= docker
images:
	@if command -v $(DOCKER) >/dev/null 2>&1 && $(DOCKER) info >/dev/null 2>&1; then \
		$(DOCKER) build -t $(IMAGE) . ; \
	else \
		echo "make images: skipped, Docker is not available here (no docker command, or its daemon is not running)"; \
	fi

# Re-resolve and pin every dependency (run after changing pyproject.toml).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q -e '.[dev]'
	.lock-venv/bin/pip freeze --exclude-editable --all | grep -v '^switchboard' > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) gen build *.egg-info
