#!/usr/bin/env bash
# render-iam.sh — the operator's IAM policy and the roles' boundary for your chart values: the
# shipped ones (manifests/iam/) narrowed to the tenant policy the chart would give the operator
# (record names to its host suffixes, statements to its regions, image pulls to its ECR
# repositories). Helm merges the values exactly as it will at install.
#   scripts/render-iam.sh OUT_DIR [helm template flags, e.g. -f my-values.yaml]
# writes OUT_DIR/operator-policy.json and OUT_DIR/role-boundary.json. The operator binary is
# BLOG_OPERATOR_BIN when set (e.g. from the release image), else built here with cargo.
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,9p' "$0"; exit 2; }
out=$1; shift
cd "$(dirname "$0")/.."
helm=$(scripts/tools.sh helm-path)
mkdir -p "$out"
policy=$(mktemp); trap 'rm -f "$policy"' EXIT
# The ConfigMap holds the merged tenant policy as one quoted JSON string (the opt-out only keeps
# the deployment template from asking for an account id; it does not reach the ConfigMap).
"$helm" template blog-operator charts/blog-operator --show-only templates/config.yaml \
  --set allowRolesWithoutBoundary=true "$@" |
  python3 -c '
import json, sys
for line in sys.stdin:
    key, _, value = line.strip().partition(": ")
    if key == "tenant-policy.json":
        print(json.loads(value)); sys.exit(0)
sys.exit("the chart renders no tenant policy (tenantPolicy: null); the shipped policies in manifests/iam/ are already the open ones")
' > "$policy"
if [ -n "${BLOG_OPERATOR_BIN:-}" ]; then run=("$BLOG_OPERATOR_BIN"); else run=(cargo run -q --locked -p blog-operator --bin blog-operator --); fi
for document in operator boundary; do
  file=$([ "$document" = operator ] && echo operator-policy.json || echo role-boundary.json)
  "${run[@]}" --tenant-policy "$policy" --print-iam-policy "$document" > "$out/$file"
  echo "$out/$file"
done
