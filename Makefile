# processman: the two commands of the README's quick start are
#   make run    build PocketBase with processman and serve examples/ (a Python and a Node sidecar)
#   make test   install the test dependencies and run every test
# Everything else here is what those two are made of.

GO       ?= go
PYTHON   ?= python3
BIN      := bin/pocketbase
VENV     := .venv
COMPAT   := compat/pocketbase-v0.35.mod
HTTP     ?= 127.0.0.1:8090

.PHONY: run build test test-go test-compat test-e2e vet bench bench-gateway clean

run: build
	./$(BIN) serve --dir examples/pb_data --http $(HTTP)

build:
	$(GO) build -o $(BIN) ./cmd/pocketbase

# The Python virtualenv for the end-to-end tests, rebuilt when its
# requirements change.
$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

vet:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi

test-go:
	$(GO) test -race -count=1 ./...

# The plugin must keep building and passing against the oldest PocketBase
# that forks still use. The dashboard page needs PocketBase v0.37+ (UI
# extensions), and so does the ready binary that wires it in.
CORE_PKGS = $(shell $(GO) list ./... | grep -v -e /dashboard -e /cmd/pocketbase)
test-compat:
	$(GO) vet -modfile=$(COMPAT) $(CORE_PKGS)
	$(GO) test -count=1 -modfile=$(COMPAT) $(CORE_PKGS)

test-e2e: build $(VENV)/.installed
	$(VENV)/bin/pytest -q tests/contract tests/e2e

test: vet test-go test-compat test-e2e

bench:
	bench/run

bench-gateway:
	bench/gateway-run

clean:
	rm -rf bin examples/pb_data
