#!/usr/bin/env python3
"""The measured scenario of `make resync-model` from `make bench-operator` summaries (BENCH_SUMMARY:
one JSON line per run), printed as the JSON of one scenario for core/data/resync-model.json.

    scripts/resync-model-fit.py NAME BASIS STEADY.jsonl [FULL.jsonl] [--as-on-aws SERVICE/OPERATION WHY]...
        [--deep-read-resyncs N]

STEADY holds runs at the operator's default --deep-read-resyncs (each a count N): every operation's
reads of one full resync are fitted as `fixed + per_object * N` (least squares; one run gives a line
through the origin). FULL, when given, holds one run at BENCH_DEEP_READ_RESYNCS=1 (every read at
every resync): what it reads beyond the steady run of the same N is the deep reads, made once every
--deep-read-resyncs periods, so a resync carries 1/that of them on average, added per object.
--as-on-aws names a read the emulator makes the operator repeat where AWS would not (moto never
finishes an ECS deployment, so the service is read at every resync): it is carried as one read an
object a deep period instead of its measured line, with WHY in the scenario. --deep-read-resyncs
carries the deep reads at another period than the runs' (their window holds no deep read).
"""
import json
import sys

SERVICES = {  # the bench's service names to the budget's (AWS signing names)
    "ApiGatewayV2": "apigateway", "Application Auto Scaling": "application-autoscaling",
    "CloudWatch": "monitoring", "CloudWatch Logs": "logs", "DynamoDB": "dynamodb", "EC2": "ec2",
    "ECS": "ecs", "Elastic Load Balancing v2": "elasticloadbalancing", "IAM": "iam", "Lambda": "lambda",
    "Secrets Manager": "secretsmanager", "WAFV2": "wafv2", "Route 53": "route53", "ACM": "acm",
}
READS = ("Describe", "Get", "List", "BatchGet")


def runs(path):
    return sorted((json.loads(line) for line in open(path) if line.strip()), key=lambda r: r["objects"])


def full_resync(run):
    """Reads of one full resync by (service, operation): per resync times the objects."""
    per_resync = max(run["resyncs"], 1)
    out = {}
    for key, calls in run["resync_calls"].items():
        service, operation = key.split("/", 1)
        if operation.startswith(READS):
            out[(service, operation)] = calls / per_resync * run["objects"]
    return out


def fit(points):
    """Least squares `fixed + per_object * n` through (n, reads) points; through 0 for one point."""
    if len(points) == 1:
        n, y = points[0]
        return 0.0, y / n
    count = len(points)
    mean_n = sum(n for n, _ in points) / count
    mean_y = sum(y for _, y in points) / count
    spread = sum((n - mean_n) ** 2 for n, _ in points)
    slope = sum((n - mean_n) * (y - mean_y) for n, y in points) / spread
    return mean_y - slope * mean_n, slope


def main():
    args, on_aws = sys.argv[1:], {}
    while "--as-on-aws" in args:
        at = args.index("--as-on-aws")
        service, operation = args[at + 1].split("/", 1)
        on_aws[(service, operation)] = args[at + 2]
        del args[at:at + 3]
    every_override = None
    if "--deep-read-resyncs" in args:
        at = args.index("--deep-read-resyncs")
        every_override = int(args[at + 1])
        del args[at:at + 2]
    name, basis, steady_path = args[:3]
    steady = runs(steady_path)
    by_op = {}
    for run in steady:
        reads = full_resync(run)
        for op in set(reads) | set(by_op):
            by_op.setdefault(op, []).append((run["objects"], reads.get(op, 0.0)))
    lines = {op: fit(points) for op, points in by_op.items()}
    deep = {}
    every = every_override or steady[0].get("deep_read_resyncs", 30)
    if len(args) > 3:
        full = runs(args[3])[0]
        same_n = min(steady, key=lambda r: abs(r["objects"] - full["objects"]))
        every = every_override or same_n.get("deep_read_resyncs", 30)
        full_reads, steady_reads = full_resync(full), full_resync(same_n)
        # Even at 1 a full read comes due only at about 0.7 of resyncs (both are jittered): the
        # function's policy, read once an object a pass, measures that share.
        share = full_reads.get(("Lambda", "GetPolicy"), full["objects"]) / full["objects"] or 1.0
        for op in set(full_reads) | set(steady_reads):
            extra = (full_reads.get(op, 0.0) - steady_reads.get(op, 0.0)) / full["objects"] / share / every
            if extra > 0.005:
                deep[op] = (extra, every)
    reads = []
    for op in sorted(set(lines) | set(deep) | set(on_aws)):
        service, operation = op
        fixed, per_object = lines.get(op, (0.0, 0.0))
        entry = {"service": SERVICES.get(service, service), "operation": operation,
                 "fixed": round(max(fixed, 0.0), 1), "per_object": round(max(per_object, 0.0), 4)}
        if op in deep:
            extra, every = deep[op]
            entry["per_object"] = round(entry["per_object"] + extra, 4)
            entry["why"] = f"includes {extra:.3f} a object: its full read every {every} resyncs"
        if op in on_aws:
            entry["fixed"], entry["per_object"] = 0.0, round(1 / every, 4)
            entry["why"] = f"{on_aws[op]}: one full read an object every {every} resyncs"
        if entry["fixed"] or entry["per_object"]:
            reads.append(entry)
    json.dump({"name": name, "basis": basis, "reads": reads}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
