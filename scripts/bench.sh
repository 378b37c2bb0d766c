#!/usr/bin/env bash
# bench.sh — load-tests the blog service on the embedded store with wrk and times its start.
# Prints requests/s and p50/p99 latency for GET /healthz, GET /blogs/{id} and POST /blogs, the same
# for the Flask peer (../shared/peers/flask-blog, in-memory, gunicorn -w 2) in the same run when it
# is there, the ratios, the time from process start to the first successful response, and whether
# any acknowledged write is lost when the server is killed with SIGKILL under write load; and the
# start in Lambda mode against a local runtime API (scripts/lambda-init.py), with the zip's size.
# A benchmark, not a test: it prints, never fails on a figure. BENCH_SECONDS (default 10),
# BENCH_CONNECTIONS (default 32), BENCH_THREADS (default 1), BENCH_PEER (default ../shared/peers/flask-blog).
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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
url=http://127.0.0.1:$port

# Start to first successful response, polled as fast as curl can go.
t0=$(date +%s%N)
PORT=$port DATA_DIR=$work/data RUST_LOG=warn "$bin" >"$work/server.log" 2>&1 &
pid=$!
until curl -sf "$url/healthz" >/dev/null 2>&1; do :; done
t1=$(date +%s%N)
echo "start to first response: $(( (t1 - t0) / 1000000 )) ms"
python3 scripts/lambda-init.py "$bin" 7
zip=target/lambda/bootstrap.zip
if [ -f "$zip" ]; then echo "Lambda zip: $(( $(stat -c %s "$zip") / 1024 )) KiB ($zip)"; else
  echo "Lambda zip: not built (make lambda-zip); the release binary is $(( $(stat -c %s "$bin") / 1024 )) KiB"; fi

id=$(curl -sf "$url/blogs" -H 'content-type: application/json' \
  -d '{"title":"Benchmark","author":"wrk","body":"A post of a few hundred bytes. '"$(printf 'x%.0s' {1..300})"'"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"Load","author":"wrk","body":"A post written under load, a few hundred bytes long. ' .. string.rep("y", 300) .. '"}'
LUA
rate() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
report() { # report NAME WRK-OUTPUT: requests/s, p50, p99, non-2xx
  local name=$1 out=$2
  printf '%-18s %10s req/s   p50 %8s   p99 %8s   %s\n' "$name" \
    "$(rate "$out")" \
    "$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")" \
    "$(grep -o 'Non-2xx or 3xx responses: [0-9]*' <<<"$out" || echo 'all 2xx')"
}
echo "wrk: $threads thread(s), $conns connections, ${secs}s each, on $(nproc) cores shared with the server"
load() { wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "$@"; }
health=$(load "$url/healthz"); report "GET /healthz" "$health"
get=$(load "$url/blogs/$id"); report "GET /blogs/{id}" "$get"
post=$(load -s "$work/post.lua" "$url/blogs"); report "POST /blogs" "$post"
echo "server RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
ratio() { python3 -c "import sys; a, b = float(sys.argv[1] or 0), float(sys.argv[2] or 0); print(f'{a / b:.3f}' if b else '?')" "$1" "$2"; }
echo "GET /blogs/{id} is $(ratio "$(rate "$get")" "$(rate "$health")") of GET /healthz"

# The peer, in the same run: the seed's Flask app, in memory, under gunicorn with 2 workers.
peer=${BENCH_PEER:-../shared/peers/flask-blog}
if [ -f "$peer/app.py" ]; then
  venv=${BLOG_STACK_CACHE:-$HOME/.cache/blog-operator}/flask-peer
  [ -x "$venv/bin/gunicorn" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q flask gunicorn >&2; }
  peer_port=$(free_port)
  (cd "$peer" && exec "$venv/bin/gunicorn" -w 2 -b "127.0.0.1:$peer_port" app:app) >"$work/peer.log" 2>&1 &
  peer_pid=$!
  until curl -sf "http://127.0.0.1:$peer_port/healthz" >/dev/null 2>&1; do sleep 0.1; done
  peer_get=$(load "http://127.0.0.1:$peer_port/blogs/bench"); report "peer GET /blogs/{id}" "$peer_get"
  peer_post=$(load -s "$work/post.lua" "http://127.0.0.1:$peer_port/blogs"); report "peer POST /blogs" "$peer_post"
  kill "$peer_pid" 2>/dev/null || true
  echo "blog service / peer: GET $(ratio "$(rate "$get")" "$(rate "$peer_get")")x, POST $(ratio "$(rate "$post")" "$(rate "$peer_post")")x (durable writes vs the peer's memory)"
else
  echo "peer: $peer not found, skipped"
fi

# SIGKILL under write load: every write the server acknowledged must be there after a restart.
kill "$pid"; wait "$pid" 2>/dev/null || true
PORT=$port DATA_DIR=$work/kill RUST_LOG=warn "$bin" >"$work/kill.log" 2>&1 &
pid=$!
until curl -sf "$url/healthz" >/dev/null 2>&1; do :; done
wrk -t1 -c"$conns" -d3s -s "$work/post.lua" "$url/blogs" >"$work/kill-wrk.txt" 2>&1 &
wrk_pid=$!
sleep 1.5; kill -9 "$pid"; wait "$wrk_pid" 2>/dev/null || true
acked=$(python3 - "$work/kill-wrk.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
done = int(re.search(r"(\d+) requests in", text).group(1)) if re.search(r"(\d+) requests in", text) else 0
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(done - (int(bad.group(1)) if bad else 0))
PY
)
PORT=$port DATA_DIR=$work/kill RUST_LOG=warn "$bin" >"$work/kill2.log" 2>&1 &
pid=$!
until curl -sf "$url/healthz" >/dev/null 2>&1; do :; done
found=$(python3 - "$url" <<'PY'
import json, sys, urllib.request
url, n, cursor = sys.argv[1], 0, None
while True:
    page = json.load(urllib.request.urlopen(f"{url}/blogs?limit=100" + (f"&next={cursor}" if cursor else "")))
    n += len(page["items"]); cursor = page.get("next")
    if not cursor:
        break
print(n)
PY
)
echo "SIGKILL under write load: $acked writes acknowledged, $found posts after the restart, $(( acked > found ? acked - found : 0 )) lost"
