#!/usr/bin/env bash
# build-lambda-zip.sh — target/lambda/bootstrap.zip for Lambda's provided.al2023 runtime.
#
# The binary is static (musl), so it runs on the runtime's Amazon Linux 2023 whatever its glibc.
# LAMBDA_ARCH=x86_64 (default) or arm64; arm64 needs the aarch64-linux-gnu-gcc cross compiler
# (Debian's gcc-aarch64-linux-gnu) for ring's C parts. Upload with
#   aws lambda create-function --runtime provided.al2023 --handler bootstrap \
#     --architectures x86_64 --zip-file fileb://target/lambda/bootstrap.zip ...
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${LAMBDA_ARCH:-x86_64}
case "$arch" in
  x86_64) triple=x86_64-unknown-linux-musl; cc_pkg=musl-tools; cc=musl-gcc ;;
  arm64) triple=aarch64-unknown-linux-musl; cc_pkg=gcc-aarch64-linux-gnu; cc=aarch64-linux-gnu-gcc ;;
  *) echo "LAMBDA_ARCH must be x86_64 or arm64" >&2; exit 2 ;;
esac
rustup target list --installed | grep -qx "$triple" || rustup target add "$triple" ||
  { echo "cannot add the Rust target $triple (rustup target add $triple)" >&2; exit 1; }
if ! command -v "$cc" >/dev/null; then
  sudo_cmd=; [ "$(id -u)" = 0 ] || sudo_cmd=sudo
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$cc_pkg" >/dev/null ||
    { echo "install $cc_pkg (it provides $cc) and retry" >&2; exit 1; }
fi
export "CC_${triple//-/_}=$cc"
# Rust links musl targets statically with its own C runtime; a cross build only needs the linker.
[ "$arch" = x86_64 ] || export "CARGO_TARGET_$(echo "$triple" | tr a-z- A-Z_)_LINKER=$cc"
cargo build --locked --release -p blog-service --target "$triple"
target=${CARGO_TARGET_DIR:-target}
out=target/lambda
rm -rf "$out" && mkdir -p "$out/pkg"
install -m 0755 "$target/$triple/release/blog-service" "$out/pkg/bootstrap"
# Python's zipfile keeps the executable bit, which Lambda needs on `bootstrap`.
(cd "$out/pkg" && python3 -m zipfile -c ../bootstrap.zip bootstrap)
if file -b "$out/pkg/bootstrap" | grep -q 'dynamically linked'; then
  echo "bootstrap is dynamically linked; Lambda's provided.al2023 has no musl loader" >&2; exit 1
fi
echo "$out/bootstrap.zip ($(du -h "$out/bootstrap.zip" | cut -f1), $arch, static)"
