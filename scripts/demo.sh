#!/usr/bin/env bash
# demo.sh — the whole thing on the embedded local stack:
#   1. a real kube-apiserver + etcd and the moto AWS emulator on loopback (scripts/local-stack.sh);
#   2. the BlogDeployment CRD installed from crds/, the operator running against both;
#   3. manifests/examples/demo.yaml applied, waited on until Ready, `kubectl get bd` printed;
#   4. the data plane of what the operator declared, run on loopback from the configuration it
#      wrote into the emulator (scripts/data-plane.py): the function on cargo lambda's runtime API,
#      the tasks behind HAProxy; both local URLs printed next to the AWS ones.
# Ctrl-C stops the data plane, the operator and the stack.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
stack="$root/target/demo-stack"
target=${CARGO_TARGET_DIR:-$root/target}

# The build `make test` makes (same command, so the same features): right after it, nothing rebuilds.
cargo test --workspace --all-targets --locked --no-run
scripts/local-stack.sh install
scripts/tools.sh install
scripts/local-stack.sh up "$stack"
eval "$(scripts/local-stack.sh env "$stack")"
kubectl=$(scripts/tools.sh kubectl-path)
k() { "$kubectl" "$@" 2> >(grep -v 'version difference' >&2); }

operator_pid=
data_plane_pid=
cleanup() {
  [ -n "$data_plane_pid" ] && kill "$data_plane_pid" 2>/dev/null && wait "$data_plane_pid" 2>/dev/null || true
  [ -n "$operator_pid" ] && kill "$operator_pid" 2>/dev/null || true
  scripts/local-stack.sh down "$stack"
}
trap cleanup EXIT
# A signal exits through the EXIT trap, so Ctrl-C or a kill stops everything the demo started.
trap "exit 130" INT
trap "exit 143" TERM

k apply -f crds/blogdeployments.blogs.serverless.dev.yaml
k wait --for=condition=Established crd/blogdeployments.blogs.serverless.dev --timeout=60s
# The emulator never starts ECS tasks: count the container variant ready once it is provisioned.
"$target/debug/blog-operator" --log-format text --admin-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 --resync-seconds 30 \
  --container-readiness provisioned --allow-roles-without-boundary --allow-any-tenant-spec \
  >"$stack/operator.log" 2>&1 &
operator_pid=$!
echo "operator running (pid $operator_pid, log $stack/operator.log)"

# The example's image, pushed to the emulator's ECR as `docker push` would (its manifest: moto keeps
# no layers), single-architecture arm64, so the operator's image check lets both variants run it.
moto_python="$(dirname "$(scripts/local-stack.sh moto-path)")/python"
"$moto_python" - <<'PY'
import json, boto3
ecr = boto3.client("ecr")
ecr.create_repository(repositoryName="blog-service")
config = {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
          "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": []}
ecr.put_image(repositoryName="blog-service", imageTag="1.0.0", imageManifest=json.dumps(manifest),
              imageManifestMediaType=manifest["mediaType"])
PY
k apply -f manifests/examples/demo.yaml
k wait --for=condition=Ready bd/demo -n blogs --timeout=120s
echo
k get bd -A
echo
k get bd demo -n blogs -o json >"$stack/demo.json"
functions_url=$(k get bd demo -n blogs -o jsonpath='{.status.functionUrl}')
containers_url=$(k get bd demo -n blogs -o jsonpath='{.status.containerUrl}')

# The data plane of what the operator declared, on loopback (scripts/data-plane.py says how).
rm -f "$stack/data-plane.out" && mkfifo "$stack/data-plane.out"
"$moto_python" scripts/data-plane.py "$stack/demo.json" "$stack/data-plane" \
  --blog-service "$target/debug/blog-service" --cargo-lambda "$(scripts/tools.sh cargo-lambda-path)" \
  --haproxy "$(scripts/tools.sh haproxy-path)" >"$stack/data-plane.out" &
data_plane_pid=$!
exec 3<"$stack/data-plane.out"
read -r _ local_functions <&3
read -r _ local_containers <&3
read -r _ tasks _ health <&3
echo
echo "Functions variant  AWS: $functions_url"
echo "                 local: $local_functions  (blog-service on the Lambda runtime API of cargo lambda watch --only-lambda-apis, API Gateway payload 2.0)"
echo "Containers variant AWS: $containers_url"
echo "                 local: $local_containers  (HAProxy over $tasks blog-service processes, health check $health)"
echo
token=$(k get secret "$(k get bd demo -n blogs -o jsonpath='{.status.writeTokenSecret}')" -n blogs \
  -o jsonpath='{.data.token}' | base64 -d)
echo "Write token (the operator generated it; the page asks for it): $token"
echo "Open either local page: it lists, writes and deletes posts through either variant, and says"
echo "which one answered each request and how long it took. Logs: $stack/data-plane/."
echo "Ctrl-C stops the data plane, the operator and the stack."
wait "$data_plane_pid"
