# The two commands the README starts with are `make demo` and `make test`; each does its own set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help
STACK_DIR ?= $(CURDIR)/target/test-state/make-test

.PHONY: help demo test test-unit lint stack-up stack-down lambda-zip bench

help:
	@echo "make demo        local stack + operator + demo BlogDeployment, then the blog on its table"
	@echo "make test        everything: set-up (local stack, moto), unit, emulator and end-to-end tests"
	@echo "make lint        rustfmt, clippy (warnings are errors), no second hyper/rustls stack"
	@echo "make lambda-zip  build target/lambda/bootstrap.zip for the provided.al2023 runtime"
	@echo "make bench       load-test the blog service (wrk) and time its start"

demo:
	scripts/demo.sh

# Set-up first (every tool, before any test starts: no test installs anything), then one local
# stack for every test binary; it stops when the tests end, however they end.
test:
	scripts/local-stack.sh install
	scripts/tools.sh install
	scripts/local-stack.sh up "$(STACK_DIR)"
	trap 'scripts/local-stack.sh down "$(STACK_DIR)"' EXIT; \
	  eval "$$(scripts/local-stack.sh env "$(STACK_DIR)")"; \
	  cargo test --workspace --all-targets --locked

test-unit:
	cargo test --workspace --lib --locked

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	@if cargo tree --workspace -i hyper@0.14 >/dev/null 2>&1; then \
	  echo "hyper 0.14 is in the tree: an aws-* crate has its legacy rustls feature on"; exit 1; fi

lambda-zip:
	scripts/build-lambda-zip.sh

bench:
	scripts/bench.sh
