# agent-mesh — the two set-up commands are `make run` and `make test`.
CARGO ?= cargo

.PHONY: run build test deps unit lint e2e e2e-deps fmt clean static fuzz fuzz-build bench

## Start the server on http://127.0.0.1:8080 (offline provider, no key needed).
run:
	$(CARGO) run --release --bin agent-mesh

build:
	$(CARGO) build --release --bin agent-mesh

## Every test: formatting, lints, unit and integration tests over real sockets, a
## build of every fuzz target (so they never rot), and the browser tests of the page.
## It first installs what the tests need when it is missing (scripts/test-deps.sh).
test: deps
	@$(MAKE) --no-print-directory lint unit fuzz-build e2e DEPS_CHECKED=1

deps:
	@CARGO="$(CARGO)" scripts/test-deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
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
	@$(if $(DEPS_CHECKED),:,TEST_DEPS_LABEL="make e2e" scripts/test-deps.sh browser mcp)

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml

## The benchmark (bench/): relay latency, pipeline overhead, throughput, memory and
## startup of the release binary against a local mock provider. Prints the table and
## writes bench/results.json (and bench/results.md, the table for the README).
bench:
	$(CARGO) build --release --bin agent-mesh
	cd bench && $(CARGO) build --release
	cd bench && ./target/release/agent-mesh-bench --repo .. --out results.json

clean:
	$(CARGO) clean

## A fully static x86-64 Linux binary (musl): needs `musl-tools` (apt) for musl-gcc.
MUSL_TARGET := x86_64-unknown-linux-musl
STATIC_BIN := target/$(MUSL_TARGET)/release/agent-mesh
static:
	@command -v musl-gcc >/dev/null || { echo "static: musl-gcc not found; install musl-tools (apt-get install musl-tools)"; exit 1; }
	rustup target add $(MUSL_TARGET)
	CC_x86_64_unknown_linux_musl=musl-gcc $(CARGO) build --release --locked --target $(MUSL_TARGET) --bin agent-mesh
	@# musl's default is a static PIE: file says "static-pie linked", ldd "statically linked".
	@if file $(STATIC_BIN) | grep -qE 'statically linked|static-pie linked' \
	   || ldd $(STATIC_BIN) 2>&1 | grep -qE 'not a dynamic executable|statically linked'; then \
	  echo "static: $(STATIC_BIN) is statically linked"; \
	else \
	  echo "static: $(STATIC_BIN) is NOT statically linked:"; file $(STATIC_BIN); ldd $(STATIC_BIN); exit 1; \
	fi
	@echo "static: size $$(stat -c %s $(STATIC_BIN)) bytes ($$(du -h $(STATIC_BIN) | cut -f1))"

## Fuzzing (cargo-fuzz on nightly). `make fuzz` runs every target FUZZ_SECS seconds;
## new inputs go to fuzz/target/corpus/ (the checked-in seeds in fuzz/corpus/ are only
## read), crashes to fuzz/artifacts/. It fails at the end if any target crashed.
FUZZ_SECS ?= 60
FUZZ_TOOLCHAIN ?= +nightly
FUZZ_TARGETS := sse_parser plan_parser basic_auth run_request chunk_decoders mcp_message plan_edit

fuzz-build:
	cd fuzz && $(CARGO) $(FUZZ_TOOLCHAIN) fuzz build

fuzz: fuzz-build
	@failed=; for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/target/corpus/$$t; \
	  echo "== fuzz: $$t for $(FUZZ_SECS) s"; \
	  (cd fuzz && $(CARGO) $(FUZZ_TOOLCHAIN) fuzz run $$t target/corpus/$$t corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECS) -dict=dicts/$$t.dict) || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in:$$failed (inputs in fuzz/artifacts/)"; exit 1; fi
