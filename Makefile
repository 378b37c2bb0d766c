# The two commands the README starts with are `make demo` and `make test`; each does its own set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help
STACK_DIR ?= $(CURDIR)/target/test-state/make-test

.PHONY: help demo test test-fakecloud test-unit docs ci lint sbom images stack-up stack-down lambda-zip bench bench-operator bench-placement resync-model chaos

# The one build every command shares (tests, the test images, the demo, the docs generator): one
# feature resolution, so `make demo` or `make docs` after `make test` rebuilds nothing.
BUILD := cargo test --workspace --all-targets --locked --no-run
PHASE := scripts/phase.sh

help:
	@echo "make demo        local stack + operator + demo BlogDeployment, then the blog on its table"
	@echo "make test        set-up (local stack, moto, tools), the build, the book, unit, emulator and end-to-end tests on moto"
	@echo "make test-unit   the pure tests only (no stack, no emulator); under a minute warm"
	@echo "make test-fakecloud  the operator's end-to-end tests on the second emulator (fakecloud; CI runs it too)"
	@echo "make docs        the book in target/book: generated reference, diagrams, every internal link checked"
	@echo "make ci          what CI runs (.ci/run): lint, sbom, test, test-fakecloud, each phase timed"
	@echo "make lint        rustfmt, clippy (warnings are errors), no second hyper/rustls stack, licences and sources (cargo-deny)"
	@echo "make sbom        CycloneDX SBOMs of the operator and the blog service in target/sbom/"
	@echo "make images      OCI images of the blog service and the operator in target/images/ (no Docker daemon)"
	@echo "make lambda-zip  build target/lambda/bootstrap.zip for the provided.al2023 runtime"
	@echo "make bench       load-test the blog service (wrk) beside the Flask peer, time its start"
	@echo "make bench-operator  N BlogDeployments at once on the local stack (BENCH_OBJECTS=200): time, calls, RSS"
	@echo "make resync-model    one full resync at 10,000 objects, from bench-operator's reads and AWS's documented rates"
	@echo "make bench-placement  six demand shapes x 20 seeds x 3 scales: the placer (the operator's demand path) against home only, all functions, all containers, the best fixed placement and a per-step oracle"
	@echo "make chaos       the chaos suite at full size behind the realism layer; prints its table"

demo:
	scripts/demo.sh

# Set-up first (every tool, the build, and the images a test inspects, before any test starts: no
# test installs or builds anything), then the book, then one local stack for every test binary; it
# stops when the tests end, however they end. Each phase prints its wall time. The second
# emulator's suite is `make test-fakecloud`, which CI (.ci/run) runs as its own phase.
test:
	@$(PHASE) set-up bash -c 'scripts/local-stack.sh install && scripts/tools.sh install'
	@$(PHASE) build $(BUILD)
	@$(PHASE) test-images scripts/images.sh --profile dev
	@$(PHASE) docs $(MAKE) --no-print-directory docs
	@$(PHASE) tests bash -c 'scripts/local-stack.sh up "$(STACK_DIR)" && \
	  trap "scripts/local-stack.sh down \"$(STACK_DIR)\"" EXIT && \
	  eval "$$(scripts/local-stack.sh env "$(STACK_DIR)")" && \
	  cargo test --workspace --all-targets --locked'

# The operator's end-to-end suite again, on the second emulator (fakecloud), without what does not
# depend on the emulator (the outage is all 503s from the realism layer, hostile specs make no AWS
# call) or runs only on moto (the browser test's data plane reads moto's own state; on fakecloud the
# regions of a placement rewrote each other's API domain name, route, task definition and listener
# at every resync, 3 of each per two resyncs, as if it kept them in one namespace for all regions).
# Lost create answers run only on moto for now: on fakecloud a repeated CreateSecurityGroup made a
# second group (11 for 10, seen once; not yet understood). An account per team runs only on moto: fakecloud's AssumeRole needs the role to exist in the team's
# account first, and a test has no credentials in that account to make it with.
FAKECLOUD_SKIP := --skip browser:: --skip chaos::an_outage --skip chaos::hostile --skip placement:: \
  --skip tenancy::a_namespace_mapped_to_its_own_account \
  --skip chaos::a_create_whose_answer_is_lost \
  --skip recovery::resyncs_take_roles_and_load_balancers_from_listings
# The deep-read test is skipped on fakecloud for now: a kept ECS service stands while its cluster's
# task counts in the listing do not change, and on fakecloud the service was read 8 times in 13
# resyncs (every other read was 0), as if those counts moved between listings; not yet understood.
# `--workspace --test e2e` resolves features as the workspace build does (`-p blog-operator` did
# not, and rebuilt the AWS SDK crates).
test-fakecloud:
	@$(PHASE) fakecloud-set-up bash -c 'scripts/local-stack.sh install && scripts/local-stack.sh install-fakecloud'
	@$(PHASE) fakecloud-build $(BUILD)
	@$(PHASE) fakecloud-e2e bash -c 'BLOG_AWS_EMULATOR=fakecloud scripts/local-stack.sh up "$(STACK_DIR)-fakecloud" && \
	  trap "scripts/local-stack.sh down \"$(STACK_DIR)-fakecloud\"" EXIT && \
	  eval "$$(scripts/local-stack.sh env "$(STACK_DIR)-fakecloud")" && \
	  cargo test --workspace --test e2e --locked -- $(FAKECLOUD_SKIP)'

# Every pure test (unit tests of each crate: no stack, no emulator, no tool).
test-unit:
	cargo test --workspace --lib --bins --locked

# The book: the reference pages regenerated from the code, the diagrams drawn from their dot
# sources, mdBook's build, then every internal link and anchor checked.
docs:
	scripts/tools.sh install
	scripts/docs.sh

ci:
	bash .ci/run

lint:
	scripts/tools.sh install-lint
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	@if cargo tree --workspace -i hyper@0.14 >/dev/null 2>&1; then \
	  echo "hyper 0.14 is in the tree: an aws-* crate has its legacy rustls feature on"; exit 1; fi
	"$$(scripts/tools.sh cargo-tools-path)/cargo-deny" check licenses bans sources

# From the lockfile, for the shipped crates (Linux, no build-only dependencies).
sbom:
	scripts/tools.sh install-lint
	PATH="$$(scripts/tools.sh cargo-tools-path):$$PATH" cargo cyclonedx --format json \
	  --target x86_64-unknown-linux-gnu --no-build-deps -q
	mkdir -p target/sbom
	mv operator/blog-operator.cdx.json blog-service/blog-service.cdx.json target/sbom/
	find . -name '*.cdx.json' -not -path './target/*' -delete
	@python3 -c 'import json,sys; [print(f, len(json.load(open(f)).get("components", [])), "components") for f in sys.argv[1:]]' target/sbom/*.cdx.json

images:
	scripts/tools.sh install
	scripts/images.sh

lambda-zip:
	scripts/build-lambda-zip.sh

# The chaos suite of `make test` at the sizes of issue 14 (other sizes: make chaos CHAOS_SIZES="CHAOS_KILLS=5").
# A benchmark-style run: the table it prints is the result; it also fails on a broken invariant.
CHAOS_SIZES ?= CHAOS_KILLS=20 CHAOS_CYCLES=50 CHAOS_OBJECTS=50 CHAOS_OUTAGE_SECONDS=600 CHAOS_RETRY_MAX_SECONDS=300
chaos:
	scripts/local-stack.sh install
	scripts/tools.sh install
	scripts/local-stack.sh up "$(STACK_DIR)-chaos"
	mkdir -p target
	trap 'scripts/local-stack.sh down "$(STACK_DIR)-chaos"' EXIT; \
	  eval "$$(scripts/local-stack.sh env "$(STACK_DIR)-chaos")"; \
	  env $(CHAOS_SIZES) cargo test --workspace --test e2e --locked chaos:: -- --nocapture --test-threads 1 \
	    2>&1 | tee target/chaos.log | grep -E '^(\||test )'; \
	  status=$${PIPESTATUS[0]}; echo "full log: target/chaos.log"; exit $$status

bench:
	scripts/bench.sh

bench-operator:
	scripts/bench-operator.sh

bench-placement:
	cargo run --locked --release -q -p blog-core --example bench-placement

resync-model:
	cargo run --locked -q -p blog-core --example resync-model
