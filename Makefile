# agent-mesh — the two set-up commands are `make run` and `make test`.
CARGO ?= cargo

.PHONY: run build test unit lint fmt clean bench

## Start the server on http://127.0.0.1:8080 (offline provider, no key needed).
run:
	$(CARGO) run --release --bin agent-mesh

build:
	$(CARGO) build --release --bin agent-mesh

## Every test: formatting, lints, unit and integration tests over real sockets.
test: lint unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test --all-targets

fmt:
	$(CARGO) fmt --all

## The benchmark (bench/): relay latency, pipeline overhead, throughput, memory and
## startup of the release binary against a local mock provider. Prints the table and
## writes bench/results.json (and bench/results.md, the table for the README).
bench:
	$(CARGO) build --release --bin agent-mesh
	cd bench && $(CARGO) build --release
	cd bench && ./target/release/agent-mesh-bench --repo .. --out results.json

clean:
	$(CARGO) clean
