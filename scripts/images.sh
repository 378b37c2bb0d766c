#!/usr/bin/env bash
# images.sh — OCI images of the blog service and the operator, without a Docker daemon.
#
#   scripts/images.sh        (make images) → target/images/blog-service/ and target/images/blog-operator/,
#                            each an OCI image layout with one tag per architecture (amd64, arm64)
#   scripts/images.sh --profile dev   (make test) → target/test-images/…, amd64 only, from the debug
#                            binaries the test build already made (`cargo test --workspace
#                            --all-targets --no-run`, which it runs: a no-op when they are fresh);
#                            tests/tests/images.rs inspects these. Nothing in that test depends on
#                            the release profile, and packing the debug build saves a release build.
#
# Each image holds the binary (release; or debug, its debug info stripped) at /usr/local/bin/<name>
# (its entrypoint), the shared libraries `ldd` names (glibc, as a distroless base would carry), the
# CA roots, and a user 65532 it runs as. Debian's umoci writes the layout (scripts/tools.sh install gets it); push it with any
# OCI tool, e.g. `skopeo copy oci:target/images/blog-service:amd64 docker://<registry>/blog-service:1.0.0-amd64`.
# linux/arm64 needs the aarch64 Rust standard library (`rustup target add aarch64-unknown-linux-gnu`)
# and an aarch64 linker; where either is missing the script says so and builds amd64 only.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
profile=release
[ "${1:-}" = --profile ] && profile=${2:?--profile needs dev or release}
case "$profile" in dev | release) ;; *) echo "images: --profile is dev or release" >&2; exit 2 ;; esac
umoci=$(scripts/tools.sh umoci-path)

declare -A binaries
if [ "$profile" = dev ]; then
  out=target/test-images
  cargo test --workspace --all-targets --locked --no-run
  # Debug info stripped from a copy: the layers stay small and quick to pack and unpack.
  stripped="$target/test-images-bin"
  mkdir -p "$stripped"
  for name in blog-service blog-operator; do strip --strip-debug -o "$stripped/$name" "$target/debug/$name"; done
  binaries[amd64]=$stripped
else
  out=target/images
  cargo build --release --locked -p blog-service -p blog-operator --bin blog-service --bin blog-operator
  binaries[amd64]="$target/release"
  if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu &&
    command -v aarch64-linux-gnu-gcc >/dev/null; then
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc cargo build --release --locked \
      --target aarch64-unknown-linux-gnu -p blog-service -p blog-operator --bin blog-service --bin blog-operator
    binaries[arm64]="$target/aarch64-unknown-linux-gnu/release"
  else
    echo "images: linux/arm64 not built: this machine has no aarch64 Rust standard library or linker" >&2
  fi
fi

# Fills a root filesystem: the binary, the libraries it loads, CA roots, the user it runs as.
fill_rootfs() { # fill_rootfs ROOTFS BINARY
  local rootfs=$1 binary=$2 lib
  install -D -m 0755 "$binary" "$rootfs/usr/local/bin/$(basename "$binary")"
  for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do cp -L --parents "$lib" "$rootfs"; done
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  echo "nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin" >"$rootfs/etc/passwd"
  echo "nonroot:x:65532:" >"$rootfs/etc/group"
}

for name in blog-service blog-operator; do
  layout="$out/$name"
  rm -rf "$layout" && mkdir -p "$out" && "$umoci" init --layout "$layout"
  for arch in "${!binaries[@]}"; do
    work=$(mktemp -d)
    "$umoci" new --image "$layout:$arch"
    "$umoci" unpack --rootless --image "$layout:$arch" "$work/bundle" >/dev/null
    fill_rootfs "$work/bundle/rootfs" "${binaries[$arch]}/$name"
    "$umoci" repack --image "$layout:$arch" "$work/bundle"
    "$umoci" config --image "$layout:$arch" --architecture "$arch" --os linux \
      --config.user 65532:65532 --config.entrypoint "/usr/local/bin/$name" \
      --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
    rm -rf "$work"
  done
  "$umoci" gc --layout "$layout"
  echo "images: $layout: ${!binaries[*]} ($(du -sh "$layout" | cut -f1))"
done
