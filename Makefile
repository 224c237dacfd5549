# agent-mesh — the two set-up commands are `make run` and `make test`.
CARGO ?= cargo

.PHONY: run build test unit lint e2e e2e-deps fmt clean

## Start the server on http://127.0.0.1:8080 (offline provider, no key needed).
run:
	$(CARGO) run --release --bin agent-mesh

build:
	$(CARGO) build --release --bin agent-mesh

## Every test: formatting, lints, unit and integration tests over real sockets, and
## the browser end-to-end tests of the web page.
test: lint unit e2e

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test --all-targets

## Browser tests of the page (e2e/): node's test runner drives the system Chromium
## through playwright-core against a freshly built server. MESH_BIN picks the binary.
MESH_BIN ?= $(CURDIR)/target/debug/agent-mesh

e2e: e2e-deps
	$(CARGO) build --bin agent-mesh
	cd e2e && MESH_BIN="$(MESH_BIN)" node --test --test-concurrency=1 *.test.mjs

e2e-deps:
	@test -d e2e/node_modules/playwright-core || (cd e2e && npm ci --no-audit --no-fund)
	@test -x "$${CHROMIUM_PATH:-/usr/bin/chromium}" || { echo "e2e: Chromium not found at $${CHROMIUM_PATH:-/usr/bin/chromium} (apt-get install chromium)" >&2; exit 1; }

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
