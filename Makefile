# processman: the two commands of the README's quick start are
#   make run    build PocketBase with processman, install the examples' dependencies and serve examples/
#   make test   install the test dependencies and run every test
# Everything else here is what those two are made of.

GO       ?= go
PYTHON   ?= python3
BIN      := bin/pocketbase
VENV     := .venv
COMPAT   := compat/pocketbase-v0.35.mod
HTTP     ?= 127.0.0.1:8090

# The version of the binary, the wheels and the npm packages.
VERSION  := $(shell cat VERSION)
COMMIT   := $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

NPM_CI   := npm ci --no-audit --no-fund --loglevel=error
PIP      := pip install --quiet --disable-pip-version-check
# apt-get for Debian packages, through sudo unless already root.
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run build examples test test-go test-compat test-sdk test-e2e test-deploy test-fuzz test-reliability test-fork fuzz vet browser bench bench-gateway bench-control bench-agents bench-reload bench-instances bench-orchestration bench-dist dist test-dist clean

run: build examples
	./$(BIN) serve --dir examples/pb_data --http $(HTTP)

# Each example sidecar has its own dependencies: a .venv (which processman
# activates) or node_modules, installed from its own files and the SDKs.
AGNO     := examples/agno-agent
AISDK    := examples/ai-sdk-agent
examples: $(AGNO)/.venv/.installed $(AISDK)/node_modules/.installed

$(AGNO)/.venv/.installed: $(AGNO)/requirements.txt sdk/python/pyproject.toml
	cd $(AGNO) && $(PYTHON) -m venv .venv && .venv/bin/$(PIP) -r requirements.txt
	touch $@

# The example installs a copy of sdk/node (install-links): a change to the
# SDK reinstalls it.
$(AISDK)/node_modules/.installed: $(AISDK)/package-lock.json sdk/node/package.json sdk/node/index.d.ts $(wildcard sdk/node/src/*.js)
	cd $(AISDK) && $(NPM_CI)
	touch $@

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/pocketbase

# The Python virtualenv for the end-to-end tests, rebuilt when its
# requirements change.
$(VENV)/.installed: requirements-dev.txt tests/e2e/requirements-browser.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/$(PIP) -r requirements-dev.txt -r tests/e2e/requirements-browser.txt
	touch $@

# Debian's chromium for the dashboard's browser tests (no browser download).
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends chromium; }

# The sidecar SDKs' own tests, each in its own environment.
sdk/python/.venv/.installed: sdk/python/pyproject.toml
	$(PYTHON) -m venv sdk/python/.venv
	sdk/python/.venv/bin/$(PIP) -e 'sdk/python[test]'
	touch $@

sdk/node/node_modules/.installed: sdk/node/package-lock.json
	cd sdk/node && $(NPM_CI)
	touch $@

test-sdk: build sdk/python/.venv/.installed sdk/node/node_modules/.installed
	cd sdk/python && .venv/bin/ruff check src tests && .venv/bin/ruff format --check src tests && .venv/bin/mypy src
	sdk/python/.venv/bin/pytest -q sdk/python/tests
	cd sdk/node && npm test

vet:
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './build/*' -not -path '*/node_modules/*')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi

test-go:
	$(GO) test -race -count=1 ./...

# The plugin must keep building and passing against the oldest PocketBase
# that forks still use (the dashboard page reports itself unsupported there)
# and the newest release, which needs Go 1.27: GOTOOLCHAIN makes the go
# command fetch that toolchain from the module proxy (README, "Which
# PocketBase").
NEWEST       := compat/pocketbase-v0.40.mod
NEWEST_GO    := go1.27.3
test-compat:
	$(GO) vet -modfile=$(COMPAT) ./...
	$(GO) test -count=1 -modfile=$(COMPAT) ./...
	GOTOOLCHAIN=$(NEWEST_GO) $(GO) vet -modfile=$(NEWEST) ./...
	GOTOOLCHAIN=$(NEWEST_GO) $(GO) test -count=1 -modfile=$(NEWEST) ./...

# The design's Node service of the end-to-end tests reads PocketBase's
# database with better-sqlite3, which npm builds from source here.
DESIGN_NODE := tests/e2e/fixtures/design/parser-service
$(DESIGN_NODE)/node_modules/.installed: $(DESIGN_NODE)/package-lock.json
	cd $(DESIGN_NODE) && $(NPM_CI)
	touch $@

test-e2e: build examples browser $(VENV)/.installed $(DESIGN_NODE)/node_modules/.installed sdk/node/node_modules/.installed
	E2E_REQUIRE_BROWSER=1 $(VENV)/bin/pytest -q tests/contract tests/e2e

# The Dockerfile (Docker's build checks and hadolint) and the systemd unit;
# a module of its own, so that BuildKit stays out of the plugin's go.mod.
test-deploy: $(VENV)/.installed
	cd deploy/check && HADOLINT=$(CURDIR)/$(VENV)/bin/hadolint REQUIRE_DEPLOY_TOOLS=1 $(GO) test -count=1 ./...

# A short run of the config fuzzer (FuzzConfig: whatever pm check accepts,
# serve mounts without a panic); make fuzz runs it for longer. Each new
# input is minimized for at most 2 s (the default is a minute, during which
# nothing new is tried).
FUZZTIME ?= 15s
test-fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzConfig -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s .

fuzz:
	$(MAKE) test-fuzz FUZZTIME=10m

# Hostile input and faults against a real PocketBase, with the figures of
# docs/security.md printed (and written to test-output/reliability.md).
test-reliability: build $(VENV)/.installed
	$(VENV)/bin/pytest -q tests/reliability

# The wheels and npm packages of the ready binary (every platform), checked,
# then installed outside the repository and run without Go (Linux).
dist: $(VENV)/.installed
	$(PYTHON) packaging/build.py --out dist
	$(VENV)/bin/twine check --strict dist/*.whl
	$(PYTHON) packaging/check.py dist

test-dist: dist
	$(VENV)/bin/pytest -q tests/dist

# The plugin, its Go tests and the ready binary against a PostgreSQL fork
# of PocketBase (a source directory or .tar.gz; default: the snapshot in
# ../shared/forks), on a PostgreSQL 17 from npm that the target starts and
# stops (docs/forks.md).
FORK_SRC ?= $(firstword $(wildcard ../shared/forks/*.tar.gz))
test-fork: $(VENV)/.installed sdk/python/.venv/.installed sdk/node/node_modules/.installed $(AGNO)/.venv/.installed
	@[ -n "$(FORK_SRC)" ] || { echo "test-fork: no fork source: give FORK_SRC=<dir or .tar.gz>"; exit 2; }
	$(PYTHON) tests/fork/run.py $(FORK_SRC)

test: vet test-go test-compat test-fuzz test-sdk test-e2e test-reliability test-deploy test-dist

bench:
	bench/run

bench-gateway:
	bench/gateway-run

bench-control: build
	$(PYTHON) bench/control.py

bench-agents: build examples
	$(PYTHON) bench/agents.py

bench-reload:
	bench/reload-run

bench-instances:
	bench/instances-run

bench-orchestration: build
	$(PYTHON) bench/orchestration.py

bench-dist: dist
	$(PYTHON) bench/dist.py

clean:
	rm -rf bin dist examples/pb_data $(AGNO)/.venv $(AISDK)/node_modules sdk/python/.venv sdk/node/node_modules $(DESIGN_NODE)/node_modules
