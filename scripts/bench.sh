#!/usr/bin/env bash
# bench.sh — load-tests the blog service on the embedded store with wrk and times its start.
# Prints requests/s and p50/p99 latency for GET /blogs/{id} and POST /blogs, and the time from
# process start to the first successful response. A benchmark, not a test: it prints, never fails
# on a figure. BENCH_SECONDS (default 10), BENCH_CONNECTIONS (default 32), BENCH_THREADS (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${BENCH_SECONDS:-10}; conns=${BENCH_CONNECTIONS:-32}; threads=${BENCH_THREADS:-1}
if ! command -v wrk >/dev/null; then
  sudo_cmd=; [ "$(id -u)" = 0 ] || sudo_cmd=sudo
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null || { echo "install wrk" >&2; exit 1; }
fi
cargo build --locked --release -p blog-service >&2
bin=${CARGO_TARGET_DIR:-target}/release/blog-service
work=$(mktemp -d); trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port

# Start to first successful response, polled as fast as curl can go.
t0=$(date +%s%N)
PORT=$port DATA_DIR=$work/data RUST_LOG=warn "$bin" >"$work/server.log" 2>&1 &
pid=$!
until curl -sf "$url/healthz" >/dev/null 2>&1; do :; done
t1=$(date +%s%N)
echo "start to first response: $(( (t1 - t0) / 1000000 )) ms"

id=$(curl -sf "$url/blogs" -H 'content-type: application/json' \
  -d '{"title":"Benchmark","author":"wrk","body":"A post of a few hundred bytes. '"$(printf 'x%.0s' {1..300})"'"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"Load","author":"wrk","body":"A post written under load, a few hundred bytes long. ' .. string.rep("y", 300) .. '"}'
LUA
report() { # report NAME WRK-OUTPUT: requests/s, p50, p99, non-2xx
  local name=$1 out=$2
  printf '%-18s %10s req/s   p50 %8s   p99 %8s   %s\n' "$name" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")" \
    "$(grep -o 'Non-2xx or 3xx responses: [0-9]*' <<<"$out" || echo 'all 2xx')"
}
echo "wrk: $threads thread(s), $conns connections, ${secs}s each, on $(nproc) cores shared with the server"
report "GET /blogs/{id}" "$(wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "$url/blogs/$id")"
report "POST /blogs" "$(wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$work/post.lua" "$url/blogs")"
echo "server RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
