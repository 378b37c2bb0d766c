#!/usr/bin/env bash
# demo.sh — the whole thing on the embedded local stack:
#   1. a real kube-apiserver + etcd and the moto AWS emulator on loopback (scripts/local-stack.sh);
#   2. the BlogDeployment CRD installed from crds/, the operator running against both;
#   3. manifests/examples/demo.yaml applied, waited on until Ready, `kubectl get bd` printed;
#   4. the blog service served locally on the DynamoDB table the operator made.
# Ctrl-C stops the blog service, the operator and the stack. DEMO_PORT picks the blog's port.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
stack="$root/target/demo-stack"
target=${CARGO_TARGET_DIR:-$root/target}

cargo build --locked -p blog-operator -p blog-service
scripts/local-stack.sh install
scripts/tools.sh install
scripts/local-stack.sh up "$stack"
eval "$(scripts/local-stack.sh env "$stack")"
kubectl=$(scripts/tools.sh kubectl-path)
k() { "$kubectl" "$@" 2> >(grep -v 'version difference' >&2); }

operator_pid=
cleanup() {
  [ -n "$operator_pid" ] && kill "$operator_pid" 2>/dev/null || true
  scripts/local-stack.sh down "$stack"
}
trap cleanup EXIT

k apply -f crds/blogdeployments.blogs.serverless.dev.yaml
k wait --for=condition=Established crd/blogdeployments.blogs.serverless.dev --timeout=60s
# The emulator never starts ECS tasks: count the container variant ready once it is provisioned.
"$target/debug/blog-operator" --log-format text --admin-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 --resync-seconds 30 \
  --container-readiness provisioned --allow-roles-without-boundary \
  >"$stack/operator.log" 2>&1 &
operator_pid=$!
echo "operator running (pid $operator_pid, log $stack/operator.log)"

k apply -f manifests/examples/demo.yaml
k wait --for=condition=Ready bd/demo -n blogs --timeout=120s
echo
k get bd -A
echo
table=$(k get bd demo -n blogs -o jsonpath='{.status.resources.tableArn}')
table=${table##*/}
functions_url=$(k get bd demo -n blogs -o jsonpath='{.status.functionUrl}')
containers_url=$(k get bd demo -n blogs -o jsonpath='{.status.containerUrl}')
port=${DEMO_PORT:-8080}
if ! python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', $port))" 2>/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
echo "Blog service on the operator's table $table (in the emulator): http://127.0.0.1:$port/"
echo "URLs reported by the operator (emulated, nothing serves them): $functions_url $containers_url"
echo "Ctrl-C stops the blog, the operator and the stack."
echo
PORT=$port TABLE_NAME=$table FUNCTIONS_URL=$functions_url CONTAINERS_URL=$containers_url LOG_FORMAT=text \
  CORS_ALLOWED_ORIGINS="http://127.0.0.1:$port" "$target/debug/blog-service"
