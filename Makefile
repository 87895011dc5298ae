# plex-livetv-authz: the two set-up commands are `make demo` and `make test` (see README.md).
SWIFT ?= swift
BIN := .build/debug/plex-livetv-authz

.PHONY: all build demo test test-swift test-cli bench-core format clean

all: build

## build: debug build of every target
build:
	$(SWIFT) build

## demo: fake Plex + the service + a real nginx on loopback; shows decisions, runs until Ctrl-C
demo:
	bash scripts/demo.sh

## test: everything CI runs (unit tests, CLI contract checks)
test: test-swift test-cli

test-swift:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

test-cli: build
	bash Tests/cli/explain-cli.sh $(BIN)

## bench-core: decisions/s and allocations/decision of the pure core (release build, one thread)
bench-core:
	$(SWIFT) build -c release --product CoreBenchmark
	.build/release/CoreBenchmark Tests/Fixtures/plex-web-session.jsonl

## format: apply .swift-format to sources and tests
format:
	$(SWIFT) format --in-place --recursive Sources Tests Benchmarks Package.swift

clean:
	rm -rf .build .build-*
