# Seam: build, test and lint entry points. `make help` lists the targets.
#
# Tools are pinned in their own go.mod files (see tools/) and run with `go tool`, which builds them on first
# use and caches them; nothing needs to be installed besides Go (and gcc for cgo: sqlc and -race).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
BIN := bin
DATA_DIR := .seam
TEST_TIMEOUT ?= 20m

SQLC := $(GO) tool -modfile=tools/go.mod sqlc
GOLANGCI_LINT := $(GO) tool -modfile=tools/go.mod golangci-lint
GOVULNCHECK := $(GO) tool -modfile=tools/go.mod govulncheck
GO_ARCH_LINT := $(GO) tool -modfile=tools/archlint/go.mod go-arch-lint

.PHONY: help run build test test-short soak bench lint lint-fmt lint-vet lint-golangci lint-seam \
	generate pg browser tools vuln clean

help: ## List the targets
	@echo "Usage: make <target>"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: pg ## Build and run cmd/monolith on its embedded defaults (http://localhost:8080)
	$(GO) build -o $(BIN)/monolith ./cmd/monolith
	./$(BIN)/monolith

build: ## Build every binary under cmd/ into bin/
	$(GO) build -o $(BIN)/ ./cmd/...

test: pg browser lint ## Lint, then run every test with -race (unit, real PostgreSQL and NATS, end-to-end, browser)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

test-short: ## Run the fast tests only (go test -short: no PostgreSQL, no end-to-end)
	$(GO) test -short ./...

# The fault tests (test/fault, docs/reliability.md) with their load sizes multiplied by SOAK (default 10):
# more payments killed mid-way, a longer SIGTERM drain, thousands more events across NATS restarts.
SOAK ?= 10
soak: pg ## Run the fault tests (kills, restarts, failpoints) at SOAK times their CI size (default 10)
	mkdir -p $(BIN)
	SEAM_SOAK=$(SOAK) $(GO) test -count=1 -v -timeout 60m -run . ./test/fault/ 2>&1 | tee $(BIN)/soak.log | grep -E '^(---|ok|FAIL|PASS)|fault [0-9]'

bench: pg ## Run the benchmark suite (test/bench): Seam next to its peers, written to docs/BENCHMARKS.md
	$(GO) build -o $(BIN)/bench/ ./test/bench
	@echo "load before: $$(uptime)"
	./$(BIN)/bench/bench
	@echo "load after: $$(uptime)"

# Lint steps, in order. lint-seam is `seam check` (cmd/seam): module boundaries on every channel (imports through
# go-arch-lint, SQL through sqlc, bus declarations) and the freshness of generated code (.go-arch-lint.yml, sqlc
# output, the module graph docs), with the ratchet of seam-baseline.yml. See docs/boundaries.md.
lint: lint-fmt lint-vet lint-golangci lint-seam ## gofmt, go vet, golangci-lint, seam check (boundaries, generated code)

lint-fmt:
	@unformatted=$$(find . \( -path ./.git -o -path ./$(DATA_DIR) -o -path ./$(BIN) \) -prune -o -name '*.go' -print0 | xargs -0 -r gofmt -l); \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files are not formatted (run gofmt -w):" >&2; \
		echo "$$unformatted" | sed 's/^/  /' >&2; \
		exit 1; \
	fi

lint-vet:
	$(GO) vet ./...

lint-golangci:
	$(GOLANGCI_LINT) run ./...

lint-seam:
	$(GO) run ./cmd/seam check

generate: ## Regenerate code: sqlc (modules/<m>/data/*.gen.go), then go generate
	$(SQLC) generate
	$(GO) generate ./...

# The module graph (docs/module-graph.md: Mermaid picture and tables; docs/module-graph.dot) is generated from
# the code by `seam graph`; lint-seam (seam check, generated channel) fails when it is stale.
.PHONY: docs
docs: ## Regenerate docs/module-graph.md and docs/module-graph.dot from the modules' code
	$(GO) run ./cmd/seam graph --write-docs

# pg_ctl in PATH, else the newest /usr/lib/postgresql/<version>/bin/pg_ctl (Debian's layout).
PG_CTL_FIND := command -v pg_ctl 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1

pg: ## Make sure PostgreSQL server binaries exist (installs Debian's postgresql package when root)
	@pg_ctl=$$($(PG_CTL_FIND) || true); \
	if [ -z "$$pg_ctl" ]; then \
		if [ "$$(id -u)" -ne 0 ]; then \
			echo "PostgreSQL server binaries (pg_ctl, initdb) not found in PATH or /usr/lib/postgresql/*/bin." >&2; \
			echo "Install them, e.g. 'sudo apt-get install -y postgresql' (Debian/Ubuntu), then run make again." >&2; \
			exit 1; \
		fi; \
		echo "PostgreSQL server binaries not found: installing Debian's postgresql package"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update; \
		apt-get install -y --no-install-recommends postgresql; \
		echo "Stopping the package's own cluster (Seam and its tests run their own servers)"; \
		if command -v pg_lsclusters >/dev/null; then \
			pg_lsclusters --no-header 2>/dev/null | while read -r ver name _; do \
				pg_ctlcluster "$$ver" "$$name" stop >/dev/null 2>&1 || true; \
			done; \
		fi; \
		service postgresql stop >/dev/null 2>&1 || true; \
		update-rc.d postgresql disable >/dev/null 2>&1 || true; \
		systemctl disable --now postgresql >/dev/null 2>&1 || true; \
		pg_ctl=$$($(PG_CTL_FIND) || true); \
		if [ -z "$$pg_ctl" ]; then echo "postgresql installed but pg_ctl still not found" >&2; exit 1; fi; \
	fi; \
	echo "PostgreSQL: $$("$$pg_ctl" --version) ($$(dirname "$$pg_ctl"))"

# The dashboard's browser test (test/dashboard) drives Debian's Chromium headless; SEAM_CHROMIUM overrides the path.
CHROMIUM_FIND := command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || command -v google-chrome 2>/dev/null

browser: ## Make sure a headless Chromium exists for the browser test (installs Debian's chromium package when root)
	@chromium=$$($(CHROMIUM_FIND) || true); \
	if [ -z "$$chromium" ]; then \
		if [ "$$(id -u)" -ne 0 ]; then \
			echo "Chromium not found; the dashboard's browser test needs it: 'sudo apt-get install -y chromium' (Debian/Ubuntu)." >&2; \
			exit 1; \
		fi; \
		echo "Chromium not found: installing Debian's chromium package"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update; \
		apt-get install -y --no-install-recommends chromium; \
		chromium=$$($(CHROMIUM_FIND) || true); \
		if [ -z "$$chromium" ]; then echo "chromium installed but not found in PATH" >&2; exit 1; fi; \
	fi; \
	echo "Chromium: $$("$$chromium" --version 2>/dev/null) ($$chromium)"

tools: ## Build the pinned tools (sqlc, golangci-lint, govulncheck, go-arch-lint) and print their versions
	$(SQLC) version
	$(GOLANGCI_LINT) version
	$(GOVULNCHECK) -version
	$(GO_ARCH_LINT) version --output-color=false

vuln: ## Scan for known vulnerabilities with govulncheck (needs access to vuln.go.dev)
	$(GOVULNCHECK) ./...

clean: ## Remove bin/ and the local run data (.seam/: PostgreSQL cluster, JetStream store)
	rm -rf $(BIN) $(DATA_DIR)
