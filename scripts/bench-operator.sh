#!/usr/bin/env bash
# bench-operator.sh — N BlogDeployments with both variants at once on the local stack, against the
# release operator; prints the time to all Ready, reconciles, AWS calls per object on create and
# per resync (by service), the operator's RSS idle / peak / after, and the budget's waits.
# A benchmark, not a test: it prints, never fails on a figure.
# BENCH_OBJECTS (default 200), BENCH_RESYNC_SECONDS (default 30), BENCH_CONCURRENCY (default 4),
# BENCH_CALLS_PER_SECOND (the operator's call budget; default: the operator's own, 0 turns it off),
# BENCH_CALLS_PER_SECOND_FOR (space-separated SERVICE=RATE, e.g. "apigateway=10 logs=10"),
# BENCH_PROFILE (release, or debug), BENCH_DEEP_READ_RESYNCS (the operator's --deep-read-resyncs;
# 1 reads everything at every resync, which shows what the deep reads are), BENCH_ATTEMPT_TIMEOUT
# (the operator's --aws-attempt-timeout-seconds, 120 here), BENCH_ECS_START (seconds before an ECS
# deployment completes, 10; 0 leaves moto's ECS answers as they are), BENCH_WRAP (a command the operator runs
# under, e.g. "heaptrack -o /tmp/op" to see what holds its heap), BENCH_BIN (a binary built before,
# e.g. the image's musl build: target/x86_64-unknown-linux-musl/release/blog-operator, see the scale guide).
# Several counts (BENCH_OBJECTS="100 500 1000") run one after another, each on a fresh stack, and
# end with a table by N (BENCH_SUMMARY: where each run appends its figures as one JSON line).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(wc -w <<<"${BENCH_OBJECTS:-200}")" -gt 1 ]; then
  summary=$(mktemp)
  for count in $BENCH_OBJECTS; do BENCH_OBJECTS=$count BENCH_SUMMARY=$summary "$0"; echo; done
  python3 scripts/bench-operator-table.py "$summary"
  rm -f "$summary"
  exit 0
fi
n=${BENCH_OBJECTS:-200}; resync=${BENCH_RESYNC_SECONDS:-30}; workers=${BENCH_CONCURRENCY:-4}
extra=()
[ -z "${BENCH_CALLS_PER_SECOND:-}" ] || extra=(--aws-calls-per-second "$BENCH_CALLS_PER_SECOND")
for rate in ${BENCH_CALLS_PER_SECOND_FOR:-}; do extra+=(--aws-calls-per-second-for "$rate"); done
[ -z "${BENCH_DEEP_READ_RESYNCS:-}" ] || extra+=(--deep-read-resyncs "$BENCH_DEEP_READ_RESYNCS")
# moto answers slowly while it is busy (stock moto took 20-60 s to list 2,000 security groups; the
# stack's lookup of tags by id, scripts/moto-server.py, takes that to a few): at the operator's 20 s a
# listing that fails there has every resource read on its own, which then makes moto the limit.
extra+=(--aws-attempt-timeout-seconds "${BENCH_ATTEMPT_TIMEOUT:-120}")
scripts/local-stack.sh install >&2
# BENCH_PROFILE=debug counts calls without the release build's 15 minutes (time and RSS differ).
# BENCH_BIN: an operator binary built before (to compare two builds), instead of building this tree.
profile=${BENCH_PROFILE:-release}
if [ -n "${BENCH_BIN:-}" ]; then :
elif [ "$profile" = release ]; then cargo build --locked --release -p blog-operator --bin blog-operator >&2
else cargo build --locked -p blog-operator --bin blog-operator >&2; profile=debug; fi
bin=${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/$profile/blog-operator}
stack=$PWD/target/test-state/bench-operator
scripts/local-stack.sh up "$stack" >&2
eval "$(scripts/local-stack.sh env "$stack")"
work=$(mktemp -d)
pid=; ecs=
trap 'kill $pid $ecs 2>/dev/null || true; cp "$work/operator.log" "$stack/operator.log" 2>/dev/null || true; scripts/local-stack.sh down "$stack" >&2; rm -rf "$work"' EXIT
# moto never finishes an ECS deployment, so the operator would read each service at every resync;
# the realism layer in front of moto's ECS finishes it BENCH_ECS_START seconds (10) after its
# create, as ECS does once the tasks run, and counts are then as AWS would answer (0: moto's own).
if [ "${BENCH_ECS_START:-10}" != 0 ]; then
  python3 tests/aws-realism.py "$AWS_ENDPOINT_URL" "{\"ecs_start\": ${BENCH_ECS_START:-10}}" "$work/ecs.port" \
    >"$work/ecs.log" 2>&1 &
  ecs=$!
  until [ -s "$work/ecs.port" ]; do kill -0 $ecs || { cat "$work/ecs.log" >&2; exit 1; }; sleep 0.1; done
  export AWS_ENDPOINT_URL_ECS=http://127.0.0.1:$(cat "$work/ecs.port")
fi
kubectl=$(scripts/tools.sh kubectl-path)
k() { "$kubectl" "$@" 2> >(grep -v 'version difference' >&2); }
k apply -f crds/blogdeployments.blogs.serverless.dev.yaml >/dev/null
k wait --for condition=established --timeout=60s crd/blogdeployments.blogs.serverless.dev >/dev/null
k create namespace bench >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
AWS_REGION=us-west-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench RUST_LOG=warn \
  ${BENCH_WRAP:-} "$bin" --namespace bench --resync-seconds "$resync" --concurrency "$workers" --container-readiness provisioned \
  --allow-roles-without-boundary --allow-any-tenant-spec --admin-addr 127.0.0.1:0 --metrics-addr "127.0.0.1:$port" "${extra[@]}" \
  >"$work/operator.log" 2>&1 &
pid=$!
# Under a wrapper, the figures are the operator's own process, not the wrapper's.
while [ -n "${BENCH_WRAP:-}" ] && ! pgrep -n -f -- "^$bin --namespace bench" >/dev/null; do sleep 0.2; done
[ -z "${BENCH_WRAP:-}" ] || pid=$(pgrep -n -f -- "^$bin --namespace bench")
until curl -sf "http://127.0.0.1:$port/metrics" >/dev/null 2>&1; do sleep 0.2; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
# What the resident set is made of: the heap and stacks (anonymous) and the binary's code paged in.
parts() { awk '/RssAnon/ {a=$2} /RssFile/ {f=$2} END {printf "%.0f MiB anonymous, %.0f MiB code and files", a/1024, f/1024}' "/proc/$pid/status"; }
anon_kib() { awk '/RssAnon/ {print $2}' "/proc/$pid/status"; }
file_kib() { awk '/RssFile/ {print $2}' "/proc/$pid/status"; }
sleep 2; idle=$(rss); idle_parts=$(parts); idle_anon=$(anon_kib)
curl -sf "http://127.0.0.1:$port/metrics" >"$work/m0"

python3 - "$n" >"$work/objects.yaml" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f"""---
apiVersion: blogs.serverless.dev/v1alpha1
kind: BlogDeployment
metadata: {{name: b{i:04d}, namespace: bench}}
spec:
  image: blog:1
  table: {{deletionPolicy: Delete}}
  function: {{}}
  container: {{loadBalancer: {{plainHttp: true}}}}""")
PY
start=$(date +%s%N)
k apply -f "$work/objects.yaml" >/dev/null
peak=$idle
: >"$work/rates"
# The calls so far and the RSS, once a second: the peak call rate per service comes from them.
sample() {
  { date +%s.%N; curl -sf "http://127.0.0.1:$port/metrics" | grep '^blog_operator_aws_calls_total' || true; echo; } >>"$work/rates"
  now=$(rss); [ "$now" -gt "$peak" ] && peak=$now
  return 0
}
while true; do
  sample
  ready=$(k get bd -n bench -o json | python3 -c 'import json,sys; print(sum(1 for o in json.load(sys.stdin)["items"] for c in o.get("status",{}).get("conditions",[]) if c["type"]=="Ready" and c["status"]=="True"))')
  [ "$ready" -ge "$n" ] && break
  if [ $(( ($(date +%s%N) - start) / 1000000000 )) -gt 1800 ]; then echo "only $ready of $n Ready after 30 min" >&2; break; fi
  sleep 1
done
took=$(( ($(date +%s%N) - start) / 1000000 ))
curl -sf "http://127.0.0.1:$port/metrics" >"$work/m1"
# Two full resyncs first: they finish what the creates left (a first full read of what a listing
# cannot show, a first look at tags; an ECS deployment is shown in progress at its first read and
# done at the next), so the window after them shows the steady state. They last until every object
# has been resynced about two and a half times (reconciles grown by 2.5 N), at least 2.5 periods
# and at most 12: an operator that cannot keep up with the period takes longer (at N = 2,000 on
# two cores the second resync of every object took more than 6).
reconciles() { curl -sf "http://127.0.0.1:$port/metrics" | awk '/^blog_operator_reconciles_total/ {print int($2)}'; }
warm_from=$(reconciles)
warm_least=$(( $(date +%s) + resync * 5 / 2 )); warm_most=$(( $(date +%s) + resync * 12 ))
while [ "$(date +%s)" -lt "$warm_least" ] || { [ $(( $(reconciles) - warm_from )) -lt $(( n * 5 / 2 )) ] && [ "$(date +%s)" -lt "$warm_most" ]; }; do
  sample
  sleep 1
done
curl -sf "http://127.0.0.1:$port/metrics" >"$work/m1w"
# The resyncs that follow, sampled the same way.
settle=$(( $(date +%s) + resync * 3 / 2 ))
while [ "$(date +%s)" -lt "$settle" ]; do
  sample
  sleep 1
done
curl -sf "http://127.0.0.1:$port/metrics" >"$work/m2"
after=$(rss); after_parts=$(parts); after_anon=$(anon_kib); after_file=$(file_kib)
python3 - "$work" "$n" "$took" "$idle" "$peak" "$after" "$resync" "$idle_parts" "$after_parts" \
  "$idle_anon" "$after_anon" "$after_file" "${BENCH_SUMMARY:-}" <<'PY'
import json, os, re, sys
parts = sys.argv[8:10]
idle_anon, after_anon, after_file, summary = int(sys.argv[10]), int(sys.argv[11]), int(sys.argv[12]), sys.argv[13]
work, n, took, idle, peak, after, resync = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *map(int, sys.argv[4:7]), int(sys.argv[7])
def read(name):
    calls, totals = {}, {}
    for line in open(f"{work}/{name}"):
        m = re.match(r'blog_operator_aws_calls_total\{service="([^"]+)",operation="([^"]+)",outcome="[^"]+"\} (\d+)', line)
        if m:
            calls[(m[1], m[2])] = calls.get((m[1], m[2]), 0) + int(m[3])
        m = re.match(r'(blog_operator_reconciles_total|blog_operator_aws_budget_wait_seconds_total\{service="([^"]+)"\}) ([\d.e+-]+)', line)
        if m:
            totals[m[2] or m[1]] = float(m[3])
    return calls, totals
(c0, t0), (c1, t1), (c2, t2) = read("m0"), read("m1"), read("m2")
create_end = c1
# The window starts after the warm-up.
c1, t1w = read("m1w")
def per_service(a, b):
    out = {}
    for (service, _), count in b.items():
        out[service] = out.get(service, 0) + count
    for (service, _), count in a.items():
        out[service] -= count
    return {s: v for s, v in sorted(out.items()) if v}
create, resync_calls = per_service(c0, create_end), per_service(c1, c2)
reads = lambda calls: sum(v for (s, op), v in calls.items() if re.match(r"(Describe|Get|List|BatchGet)", op))
print(f"{n} BlogDeployments (both variants): all Ready in {took / 1000:.1f} s")
print(f"reconciles: {t1.get('blog_operator_reconciles_total', 0):.0f} ({t1.get('blog_operator_reconciles_total', 0) / n:.2f} per object)")
print(f"AWS calls on create: {sum(create.values())} ({sum(create.values()) / n:.1f} per object)")
print("  by service per object: " + ", ".join(f"{s} {v / n:.1f}" for s, v in create.items()))
create_ops = sorted(((v - c0.get(k, 0), k) for k, v in create_end.items() if v - c0.get(k, 0)), reverse=True)
print("  by operation per object: " + ", ".join(f"{op} {v / n:.2f}" for v, (s, op) in create_ops))
resync_total = sum(resync_calls.values())
resyncs = t2.get('blog_operator_reconciles_total', 0) - t1w.get('blog_operator_reconciles_total', 0)
window = resync * 3 // 2  # the settle loop's length above
print(f"resyncs in the {window} s after the warm-up: {resyncs:.0f}; AWS calls {resync_total}: "
      f"{resync_total / max(resyncs, 1):.1f} per resync, {(reads(c2) - reads(c1)) / max(resyncs, 1):.1f} of them reads")
warm_resyncs = t1w.get('blog_operator_reconciles_total', 0) - t1.get('blog_operator_reconciles_total', 0)
print(f"  the warm-up before: {warm_resyncs:.0f} resyncs, "
      f"{(reads(c1) - reads(create_end)) / max(warm_resyncs, 1):.1f} reads per resync")
print("  by service per resync: " + ", ".join(f"{s} {v / max(resyncs, 1):.1f}" for s, v in resync_calls.items()))
waits = {k: v for k, v in t1.items() if k != 'blog_operator_reconciles_total'}
print("budget waits on create (s): " + (", ".join(f"{s} {v:.0f}" for s, v in sorted(waits.items())) or "none"))
top = sorted(((b - c1.get(k, 0), k) for k, b in c2.items() if b - c1.get(k, 0)), reverse=True)
print("  operations per resync: " + ", ".join(f"{op} {v / max(resyncs, 1):.1f}" for v, (s, op) in top))
samples, block = [], []
for line in open(f"{work}/rates"):
    line = line.strip()
    if not line:
        if block:
            per = {}
            for l in block[1:]:
                m = re.match(r'blog_operator_aws_calls_total\{service="([^"]+)".* (\d+)$', l)
                if m:
                    per[m[1]] = per.get(m[1], 0) + int(m[2])
            samples.append((float(block[0]), per))
        block = []
    else:
        block.append(line)
peaks = {}
for (t0_, a), (t1_, b) in zip(samples, samples[1:]):
    for s, v in b.items():
        rate = (v - a.get(s, 0)) / max(t1_ - t0_, 1e-3)
        peaks[s] = max(peaks.get(s, 0), rate)
print("peak calls per second, creating and resyncing (1 s samples): " + ", ".join(f"{s} {v:.1f}" for s, v in sorted(peaks.items())))
# How long each inventory's last listing took (a task of its own takes it, no worker waits).
listings = sorted(((float(m[3]), m[1], m[2]) for m in re.finditer(
    r'blog_operator_inventory_listing_seconds\{inventory="([^"]+)",listing="([^"]*)",region="[^"]+"\} ([\d.e+-]+)',
    open(f"{work}/m2").read())), reverse=True)
print("last listing took (s): " + ", ".join(f"{kind} {took_:.1f}" for took_, kind, _ in listings))
print(f"operator RSS: idle {idle / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB, after {after / 1024:.0f} MiB")
print(f"  idle: {parts[0]}; after: {parts[1]}")
if summary:
    per_op = lambda a, b: {f"{s}/{op}": v - a.get((s, op), 0) for (s, op), v in b.items() if v - a.get((s, op), 0)}
    with open(summary, "a") as out:
        out.write(json.dumps({
            "objects": n, "ready_seconds": took / 1000, "resyncs": resyncs, "resync_seconds": resync, "window_seconds": window,
            "deep_read_resyncs": int(os.environ.get("BENCH_DEEP_READ_RESYNCS") or 30),
            "create_calls": sum(create.values()), "create_operations": per_op(c0, create_end),
            "resync_calls": per_op(c1, c2),
            "anonymous_kib": {"idle": idle_anon, "after": after_anon}, "code_kib": after_file,
            "listing_seconds": {kind: took_ for took_, kind, _ in reversed(listings)},
        }) + "\n")
PY
