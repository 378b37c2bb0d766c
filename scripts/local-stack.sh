#!/usr/bin/env bash
# local-stack.sh — a real kube-apiserver + etcd and an AWS emulator on loopback: moto, or with
# BLOG_AWS_EMULATOR=fakecloud the second, independent emulator (fakecloud, built from its crate).
#
#   scripts/local-stack.sh install        fetch/build what is missing (cached), start nothing
#   scripts/local-stack.sh up     [DIR]   start a stack whose state lives in DIR (default .stack/)
#   scripts/local-stack.sh env    [DIR]   print the exports a shell or a test needs
#   scripts/local-stack.sh status [DIR]   show which of the stack's processes are alive
#   scripts/local-stack.sh down   [DIR]   stop exactly the processes `up` started, by PID
#   scripts/local-stack.sh moto-path      install moto if missing; print the moto_server path
#   scripts/local-stack.sh install-fakecloud  build fakecloud once (cargo install at opt-level 0, as
#                                         its own e2e CI builds it; cached); `install` does it when
#                                         BLOG_AWS_EMULATOR=fakecloud
#   scripts/local-stack.sh fakecloud-path print the cached fakecloud binary (never builds)
#
# `up DIR --owner-pid PID` also stops the stack when process PID exits (test harnesses use it, so
# a crashed test run leaves nothing running).
#
# Every port is a free loopback port picked at start, and all state lives in DIR, so several
# stacks can run at once. Binaries are cached under $BLOG_STACK_CACHE (default
# ~/.cache/blog-operator): kube-apiserver is taken from $KUBEBUILDER_ASSETS or PATH when there, and
# otherwise built once from Debian bookworm's `kubernetes` source package (see DESIGN.md).
set -euo pipefail

SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
CACHE=${BLOG_STACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/blog-operator}
MOTO_VERSION=${MOTO_VERSION:-5.2.5}
FAKECLOUD_VERSION=0.51.0
EMULATOR=${BLOG_AWS_EMULATOR:-moto}
case "$EMULATOR" in moto | fakecloud) ;; *) printf 'local-stack: error: BLOG_AWS_EMULATOR must be moto or fakecloud\n' >&2; exit 1 ;; esac
KUBE_SRC_VERSION=1.20.2
GO=/usr/lib/go-1.19/bin/go

log() { printf 'local-stack: %s\n' "$*" >&2; }
die() { printf 'local-stack: error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, through sudo when it works without a prompt.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif sudo -n true 2>/dev/null; then sudo "$@"
  else die "need root for: $* — run it yourself (or give passwordless sudo) and retry"
  fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get: install them by hand"
  log "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
    { as_root apt-get update -q >/dev/null &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; } ||
    die "apt-get install ${missing[*]} failed"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# --- where the binaries come from -------------------------------------------------------------

find_etcd() {
  if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ]; then echo "$KUBEBUILDER_ASSETS/etcd"; return; fi
  if command -v etcd >/dev/null; then command -v etcd; return; fi
  apt_install etcd-server
  command -v etcd || die "etcd-server installed but no etcd on PATH"
}

find_kube_apiserver() {
  if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]; then echo "$KUBEBUILDER_ASSETS/kube-apiserver"; return; fi
  if command -v kube-apiserver >/dev/null; then command -v kube-apiserver; return; fi
  local cached="$CACHE/bin/kube-apiserver-$KUBE_SRC_VERSION"
  [ -x "$cached" ] || build_kube_apiserver "$cached"
  echo "$cached"
}

# Builds kube-apiserver from Debian bookworm's kubernetes source package. Its vendored
# modern-go/reflect2 and json-iterator/go crash under Go >= 1.18 at the first write, so they are
# replaced by Debian's packaged versions before building.
build_kube_apiserver() {
  local out=$1 work="$CACHE/src"
  log "building kube-apiserver $KUBE_SRC_VERSION from Debian source (once; 5-10 minutes)"
  apt_install golang-1.19-go golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev dpkg-dev rsync make
  if ! ls "$work"/kubernetes-*/go.mod >/dev/null 2>&1; then
    if ! apt-get source --print-uris kubernetes >/dev/null 2>&1; then
      log "adding a deb-src entry for bookworm"
      as_root sh -c 'cat > /etc/apt/sources.list.d/blog-operator-src.sources' <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
      as_root apt-get update -q >/dev/null || die "apt-get update failed after adding deb-src"
    fi
    rm -rf "$work" && mkdir -p "$work"
    (cd "$work" && apt-get source -q kubernetes >/dev/null 2>&1) ||
      die "apt-get source kubernetes failed: the deb-src for bookworm must be reachable"
  fi
  local tree
  tree=$(dirname "$(ls -d "$work"/kubernetes-*/go.mod | head -n 1)")
  for pkg in github.com/modern-go/reflect2 github.com/json-iterator/go; do
    [ -d "/usr/share/gocode/src/$pkg" ] || die "Debian's copy of $pkg is missing"
    rm -rf "${tree:?}/vendor/$pkg" && cp -r "/usr/share/gocode/src/$pkg" "$tree/vendor/$pkg"
  done
  # Kubernetes' own make runs the code generators (openapi, deepcopy) before the build.
  mkdir -p "$(dirname "$out")"
  (cd "$tree" && PATH="$(dirname "$GO"):$PATH" GOCACHE="$CACHE/go-build" GOFLAGS= GO111MODULE= \
    make WHAT=cmd/kube-apiserver) >&2 || die "make WHAT=cmd/kube-apiserver failed (see above)"
  cp "$tree/_output/local/bin/linux/$("$GO" env GOARCH)/kube-apiserver" "$out.tmp"
  mv "$out.tmp" "$out"
  log "built $out"
}

find_moto() {
  local venv="$CACHE/moto-$MOTO_VERSION"
  if [ ! -f "$venv/.complete" ]; then
    log "installing moto[server]==$MOTO_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" ||
      die "pip install moto[server] failed"
    touch "$venv/.complete"
  fi
  echo "$venv/bin/moto_server"
}

# --- one stack --------------------------------------------------------------------------------

state_dir() { local d=${1:-${BLOG_STACK_DIR:-$PWD/.stack}}; mkdir -p "$d"; (cd "$d" && pwd); }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # wait_for SECONDS PIDFILE LOG COMMAND...
  local secs=$1 pidfile=$2 logfile=$3; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    alive "$pidfile" || { tail -n 30 "$logfile" >&2; return 1; }
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$logfile" >&2; return 1; }
    sleep 0.2
  done
}

make_pki() {
  local d=$1/pki
  [ -f "$d/serving.crt" ] && return 0
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=local-stack-ca \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout "$d/serving.key" -out "$d/serving.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >"$d/ext"
  openssl x509 -req -in "$d/serving.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 3650 \
    -extfile "$d/ext" -out "$d/serving.crt" 2>/dev/null
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

start_etcd() {
  local dir=$1 bin=$2 port peer
  for _ in 1 2 3; do
    port=$(free_port); peer=$(free_port)
    rm -rf "$dir/etcd-data"
    "$bin" --name local --data-dir "$dir/etcd-data" \
      --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "local=http://127.0.0.1:$peer" --log-level warn >"$dir/etcd.log" 2>&1 &
    echo $! >"$dir/etcd.pid"
    if wait_for 30 "$dir/etcd.pid" "$dir/etcd.log" curl -sf "http://127.0.0.1:$port/health"; then
      echo "$port" >"$dir/etcd.port"; return 0
    fi
    stop_pid "$dir/etcd.pid"
  done
  die "etcd did not start (log: $dir/etcd.log)"
}

start_apiserver() {
  local dir=$1 bin=$2 port token
  token=$(cat "$dir/admin.token")
  for _ in 1 2 3; do
    port=$(free_port)
    "$bin" --etcd-servers "http://127.0.0.1:$(cat "$dir/etcd.port")" \
      --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" --insecure-port 0 \
      --tls-cert-file "$dir/pki/serving.crt" --tls-private-key-file "$dir/pki/serving.key" \
      --client-ca-file "$dir/pki/ca.crt" \
      --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC \
      --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
      --service-account-issuer https://kubernetes.default.svc --api-audiences https://kubernetes.default.svc \
      --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none \
      --enable-priority-and-fairness=false --profiling=false --allow-privileged=true \
      --logtostderr=true --v=0 >"$dir/kube-apiserver.log" 2>&1 &
    echo $! >"$dir/kube-apiserver.pid"
    if wait_for 90 "$dir/kube-apiserver.pid" "$dir/kube-apiserver.log" \
        curl -sf --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $token" "https://127.0.0.1:$port/readyz"; then
      echo "$port" >"$dir/kube-apiserver.port"; return 0
    fi
    stop_pid "$dir/kube-apiserver.pid"
  done
  die "kube-apiserver did not become ready (log: $dir/kube-apiserver.log)"
}

# The cache folder names the profile, so a build's time and the e2e's on it stay comparable.
fakecloud_bin() { echo "$CACHE/tools/fakecloud-$FAKECLOUD_VERSION-o0/bin/fakecloud"; }

# fakecloud is published only as a crate: built once with the lockfile it ships, then cached. It is
# built unoptimised (release's no debug info, no debug assertions, opt-level 0): the configuration
# its own end-to-end CI runs on, and about 0.6 of the optimised build's time.
find_fakecloud() {
  local bin; bin=$(fakecloud_bin)
  if [ ! -x "$bin" ]; then
    log "building fakecloud $FAKECLOUD_VERSION at opt-level 0 (once; about 8 minutes on 2 cores)"
    local started=$SECONDS
    CARGO_PROFILE_RELEASE_OPT_LEVEL=0 cargo install --quiet --locked fakecloud --version "$FAKECLOUD_VERSION" \
      --root "$(dirname "$(dirname "$bin")").partial" \
      --target-dir "$CACHE/fakecloud-build" || die "cargo install fakecloud failed"
    log "built fakecloud in $((SECONDS - started))s ($(du -h "$(dirname "$(dirname "$bin")").partial/bin/fakecloud" | cut -f1))"
    rm -rf "$(dirname "$(dirname "$bin")")"
    mv "$(dirname "$(dirname "$bin")").partial" "$(dirname "$(dirname "$bin")")"
    rm -rf "$CACHE/fakecloud-build"
  fi
  echo "$bin"
}

# The emulator BLOG_AWS_EMULATOR names, on a free port; aws.kind says which one it is.
start_emulator() {
  local dir=$1 bin=$2 port ready
  for _ in 1 2 3; do
    port=$(free_port)
    if [ "$EMULATOR" = fakecloud ]; then
      "$bin" --addr "127.0.0.1:$port" --region us-west-1 --log-level warn >"$dir/aws.log" 2>&1 &
      ready=/_fakecloud/health
    else
      # moto_server with its EC2 tags looked up by id (scripts/moto-server.py says why)
      "$(dirname "$bin")/python" "$(dirname "$SELF")/moto-server.py" -H 127.0.0.1 -p "$port" >"$dir/aws.log" 2>&1 &
      ready=/moto-api/data.json
    fi
    echo $! >"$dir/aws.pid"
    if wait_for 60 "$dir/aws.pid" "$dir/aws.log" curl -sf "http://127.0.0.1:$port$ready"; then
      echo "$port" >"$dir/aws.port"; echo "$EMULATOR" >"$dir/aws.kind"; return 0
    fi
    stop_pid "$dir/aws.pid"
  done
  die "$EMULATOR did not start (log: $dir/aws.log)"
}

# moto fails a whole GetMetricData that asks for a percentile; the realism layer, standalone, stands
# in front of its CloudWatch and leaves those queries out (tests/aws-realism.py). Other services go
# to moto directly.
start_cloudwatch_proxy() {
  local dir=$1
  rm -f "$dir/cloudwatch.port"
  python3 "$(dirname "$SELF")/../tests/aws-realism.py" "http://127.0.0.1:$(cat "$dir/aws.port")" '{"standalone": true}' \
    "$dir/cloudwatch.port" >"$dir/cloudwatch.log" 2>&1 &
  echo $! >"$dir/cloudwatch.pid"
  wait_for 10 "$dir/cloudwatch.pid" "$dir/cloudwatch.log" test -s "$dir/cloudwatch.port" ||
    die "the CloudWatch proxy did not start (log: $dir/cloudwatch.log)"
}

find_emulator() { if [ "$EMULATOR" = fakecloud ]; then find_fakecloud; else find_moto; fi; }

write_kubeconfig() {
  local dir=$1
  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$(cat "$dir/kube-apiserver.port")
    certificate-authority: $dir/pki/ca.crt
users:
- name: admin
  user:
    token: $(cat "$dir/admin.token")
contexts:
- name: local
  context: {cluster: local, user: admin, namespace: default}
current-context: local
EOF
}

stop_pid() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

cmd_install() {
  command -v curl >/dev/null || apt_install curl
  command -v openssl >/dev/null || apt_install openssl
  find_etcd >/dev/null
  find_kube_apiserver >/dev/null
  find_moto >/dev/null
  if [ "$EMULATOR" = fakecloud ]; then find_fakecloud >/dev/null; fi
}

cmd_up() {
  local dir etcd apiserver emulator
  dir=$(state_dir "${1:-}")
  if alive "$dir/kube-apiserver.pid" && alive "$dir/etcd.pid" && alive "$dir/aws.pid"; then
    log "already up in $dir"; return 0
  fi
  cmd_down "$dir" >/dev/null 2>&1 || true
  cmd_install
  etcd=$(find_etcd); apiserver=$(find_kube_apiserver); emulator=$(find_emulator)
  local started=$SECONDS
  make_pki "$dir"
  [ -f "$dir/admin.token" ] || python3 -c 'import secrets; print(secrets.token_hex(24))' >"$dir/admin.token"
  printf '%s,admin,admin-uid,system:masters\n' "$(cat "$dir/admin.token")" >"$dir/tokens.csv"
  start_etcd "$dir" "$etcd"
  start_emulator "$dir" "$emulator" &
  local emulator_job=$!
  start_apiserver "$dir" "$apiserver"
  wait "$emulator_job" || die "$EMULATOR did not start"
  if [ "$EMULATOR" = moto ]; then start_cloudwatch_proxy "$dir"; else rm -f "$dir/cloudwatch.port"; fi
  write_kubeconfig "$dir"
  cmd_env "$dir" >"$dir/env"
  log "up in $((SECONDS - started))s: state in $dir; run: eval \"\$(scripts/local-stack.sh env $dir)\""
}

cmd_env() {
  local dir; dir=$(state_dir "${1:-}")
  [ -f "$dir/kubeconfig" ] || die "no stack in $dir: run 'up' first"
  cat <<EOF
export KUBECONFIG=$dir/kubeconfig
export AWS_ENDPOINT_URL=http://127.0.0.1:$(cat "$dir/aws.port")
export AWS_REGION=us-west-1
export AWS_DEFAULT_REGION=us-west-1
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export BLOG_STACK_DIR=$dir
EOF
  if [ -f "$dir/cloudwatch.port" ]; then echo "export AWS_ENDPOINT_URL_CLOUDWATCH=http://127.0.0.1:$(cat "$dir/cloudwatch.port")"; fi
}

cmd_status() {
  local dir rc=0; dir=$(state_dir "${1:-}")
  for p in etcd kube-apiserver aws $([ -f "$dir/cloudwatch.pid" ] && echo cloudwatch); do
    if alive "$dir/$p.pid"; then
      printf '%-15s up   pid %-7s port %-6s rss %s kB\n' "$p" "$(cat "$dir/$p.pid")" "$(cat "$dir/$p.port" 2>/dev/null)" \
        "$(awk '/VmRSS/ {print $2}' "/proc/$(cat "$dir/$p.pid")/status" 2>/dev/null)"
    else
      printf '%-15s down\n' "$p"; rc=1
    fi
  done
  return $rc
}

cmd_down() {
  local dir; dir=$(state_dir "${1:-}")
  for p in kube-apiserver cloudwatch aws etcd; do stop_pid "$dir/$p.pid"; done
  rm -f "$dir/watchdog.pid"
  rm -rf "$dir/etcd-data"
  log "down: $dir"
}

# Stops the stack in DIR once process OWNER is gone; detached from the caller's terminal and pipes.
watch_owner() {
  local dir=$1 owner=$2
  setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; "$2" down "$3"' _ "$owner" "$SELF" "$dir" \
    </dev/null >>"$dir/watchdog.log" 2>&1 &
  echo $! >"$dir/watchdog.pid"
}

case "${1:-}" in
  install) cmd_install ;;
  moto-path) find_moto ;;
  install-fakecloud) find_fakecloud >/dev/null ;;
  fakecloud-path)
    [ -x "$(fakecloud_bin)" ] || die "fakecloud is not built: run 'scripts/local-stack.sh install-fakecloud'"
    fakecloud_bin ;;
  up)
    cmd_up "${2:-}"
    if [ "${3:-}" = --owner-pid ] && [ -n "${4:-}" ]; then watch_owner "$(state_dir "${2:-}")" "$4"; fi ;;
  env) cmd_env "${2:-}" ;;
  status) cmd_status "${2:-}" ;;
  down) cmd_down "${2:-}" ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
