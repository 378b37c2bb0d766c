#!/usr/bin/env bash
# demo-blog.sh — build the blog service and run it on the embedded store; prints the URL to open.
# DEMO_PORT picks the port (default 8080, or a free one when 8080 is taken); data stays in
# target/demo-data between runs. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -p blog-service
port=${DEMO_PORT:-8080}
if ! python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', $port))" 2>/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
target=${CARGO_TARGET_DIR:-target}
mkdir -p target/demo-data
echo
echo "Blog service (embedded store in target/demo-data): http://127.0.0.1:$port/"
echo "API: http://127.0.0.1:$port/blogs   OpenAPI: http://127.0.0.1:$port/openapi.json   Ctrl-C stops it."
echo
PORT=$port DATA_DIR=target/demo-data LOG_FORMAT=${LOG_FORMAT:-text} \
  CORS_ALLOWED_ORIGINS=${CORS_ALLOWED_ORIGINS:-http://127.0.0.1:$port} exec "$target/debug/blog-service"
