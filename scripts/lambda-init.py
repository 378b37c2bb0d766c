#!/usr/bin/env python3
"""Times the blog service's start in Lambda mode: a local Lambda runtime API on loopback hands the
binary one API Gateway HTTP API event (GET /healthz); the time from starting the process to its
answer posted back is the init plus the first invocation, as a cold start sees it.
Usage: lambda-init.py BLOG_SERVICE_BINARY [RUNS]; prints the median and the range, in ms."""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVENT = {
    "version": "2.0", "routeKey": "$default", "rawPath": "/healthz", "rawQueryString": "",
    "headers": {"host": "abc123.execute-api.us-west-1.amazonaws.com"},
    "requestContext": {
        "accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.us-west-1.amazonaws.com",
        "domainPrefix": "abc123", "requestId": "req", "routeKey": "$default", "stage": "$default",
        "http": {"method": "GET", "path": "/healthz", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
        "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 1795000000000,
    },
    "isBase64Encoded": False,
}


class RuntimeApi(BaseHTTPRequestHandler):
    answered = threading.Event()
    served = False

    def log_message(self, *args):
        pass

    def do_GET(self):
        if RuntimeApi.served:  # later polls wait, as Lambda's do between invocations
            time.sleep(30)
            return
        RuntimeApi.served = True
        body = json.dumps(EVENT).encode()
        self.send_response(200)
        deadline = str(int(time.time() * 1000) + 30000)
        for name, value in [("Lambda-Runtime-Aws-Request-Id", "req"), ("Lambda-Runtime-Deadline-Ms", deadline),
                            ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-west-1:123456789012:function:blog"),
                            ("Content-Type", "application/json"), ("Content-Length", str(len(body)))]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        RuntimeApi.answered.set()


def one_run(binary):
    RuntimeApi.served, RuntimeApi.answered = False, threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
                   AWS_LAMBDA_FUNCTION_NAME="blog", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
                   AWS_LAMBDA_FUNCTION_VERSION="$LATEST", DATA_DIR=data, RUST_LOG="warn")
        started = time.monotonic()
        process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        answered = RuntimeApi.answered.wait(30)
        elapsed = (time.monotonic() - started) * 1000
        process.kill()
        process.wait()
    server.shutdown()
    return elapsed if answered else None


def main():
    binary, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 7
    times = sorted(t for t in (one_run(binary) for _ in range(runs)) if t is not None)
    if not times:
        print("Lambda mode: no answer within 30 s")
        return
    print(f"Lambda mode, start to first event answered: median {times[len(times) // 2]:.1f} ms "
          f"(min {times[0]:.1f}, max {times[-1]:.1f}, {len(times)} runs)")


main()
