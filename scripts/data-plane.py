#!/usr/bin/env python3
"""data-plane.py — run, on loopback, the data plane of what the operator declared in the emulator.

moto stores a function and a service but runs neither. This reads back what the operator wrote —
the function's environment; the task definition's environment, secrets and port; the service's
desired count; the target group's health-check path — and runs it:

  * the function variant: blog-service polling the Lambda runtime API of `cargo lambda watch
    --only-lambda-apis` (the standard Rust Lambda tooling), whose HTTP endpoint sends API Gateway
    payload 2.0 events;
  * the container variant: the desired number of blog-service processes behind HAProxy, which
    health-checks the declared path, as the ALB does.

FUNCTIONS_URL and CONTAINERS_URL are the one thing changed: the AWS URLs become the local ones, so
each local page reaches the other local variant. Everything else is as the operator wrote it.

Usage (with a Python that has boto3, e.g. moto's):
  data-plane.py STATUS_JSON STATE_DIR --blog-service BIN --cargo-lambda BIN --haproxy BIN
It prints `functions <url>` and `containers <url>` once both answer, then runs until killed.
"""
import argparse
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import boto3


def die_with_parent():
    """Runs in each child before exec: the kernel sends it SIGTERM when this script dies, even by
    SIGKILL, so no blog-service or HAProxy outlives the data plane."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(command, log_path, **kwargs):
    log = open(log_path, "w")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent, **kwargs)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def declared(resources):
    """What the operator declared, read back from the emulator."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    clients = (boto3.client(n, region_name=region) for n in ("lambda", "ecs", "elbv2", "secretsmanager"))
    lam, ecs, elb, secrets = clients
    function = lam.get_function_configuration(FunctionName=resources["functionArn"])
    service = ecs.describe_services(cluster=resources["clusterArn"], services=[resources["serviceArn"]])["services"][0]
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    container = definition["containerDefinitions"][0]
    task_env = {kv["name"]: kv["value"] for kv in container.get("environment", [])}
    # ECS fills `secrets` from Secrets Manager when a task starts; so does this.
    for secret in container.get("secrets", []):
        task_env[secret["name"]] = secrets.get_secret_value(SecretId=secret["valueFrom"])["SecretString"]
    group = elb.describe_target_groups(LoadBalancerArn=resources["loadBalancerArn"])["TargetGroups"][0]
    return {
        "function_env": function.get("Environment", {}).get("Variables", {}),
        "function_memory": function.get("MemorySize", 512),
        "task_env": task_env,
        "port": container["portMappings"][0]["containerPort"],
        # A few local processes stand for the service's tasks, however many it asks for.
        "tasks": max(1, min(int(service["desiredCount"]), MAX_LOCAL_TASKS)),
        "health_path": safe_path(group.get("HealthCheckPath", "/")),
    }


# What the ALB accepts in a health-check path; anything else never reaches the HAProxy config.
HEALTH_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,1023}")
MAX_LOCAL_TASKS = 4


def safe_path(path):
    # Strong (single) quotes in HAProxy: nothing inside is expanded; a quote could end them.
    if not HEALTH_PATH.fullmatch(path) or "'" in path:
        sys.exit(f"data-plane: health-check path {path!r} is not one the ALB accepts")
    return path


def haproxy_config(port, health_path, backends):
    servers = "\n".join(f"  server task{i} 127.0.0.1:{p} check inter 1s fall 2 rise 1" for i, p in enumerate(backends))
    return f"""global
  log stderr format raw local0 warning
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend alb
  bind 127.0.0.1:{port}
  default_backend tasks
backend tasks
  balance roundrobin
  option httpchk GET '{health_path}'
  http-check expect status 200
{servers}
"""


def check_alive(children):
    for child in children:
        if child.poll() is not None:
            sys.exit(f"data-plane: {' '.join(child.args[:3])} exited with {child.returncode}; see its log")


def wait_for_port(port, children, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        check_alive(children)
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    sys.exit(f"data-plane: nothing listens on {port} after {seconds} s")


def wait_until_up(url, children, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        check_alive(children)
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit(f"data-plane: {url} did not answer in {seconds} s")


def start(args, state, config, aws_env):
    functions_port, containers_port = free_port(), free_port()
    local = {
        # cargo lambda's API-only mode serves whichever function polls it under the name `_`.
        "FUNCTIONS_URL": f"http://127.0.0.1:{functions_port}/lambda-url/_",
        "CONTAINERS_URL": f"http://127.0.0.1:{containers_port}",
    }
    children = []
    # The runtime API and the payload 2.0 endpoint; the function is this workspace's binary, started
    # here with the environment Lambda would give it (no cargo build in between).
    apis = [args.cargo_lambda, "lambda", "watch", "--only-lambda-apis", "--disable-cors",
            "--invoke-port", str(functions_port)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    children.append(spawn(apis, os.path.join(state, "lambda-apis.log"), cwd=root, env=aws_env))
    wait_for_port(functions_port, children)  # the function's runtime client gives up at once
    runtime = {
        "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{functions_port}/.rt",
        "AWS_LAMBDA_FUNCTION_NAME": "_",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config["function_memory"]),
    }
    function_env = {**aws_env, **config["function_env"], **local, **runtime, "LOG_FORMAT": "text"}
    children.append(spawn([args.blog_service], os.path.join(state, "function.log"), env=function_env))
    backends = [free_port() for _ in range(config["tasks"])]
    for i, port in enumerate(backends):
        env = {**aws_env, **config["task_env"], **local, "PORT": str(port), "LOG_FORMAT": "text"}
        children.append(spawn([args.blog_service], os.path.join(state, f"task{i}.log"), env=env))
    cfg = os.path.join(state, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(haproxy_config(containers_port, config["health_path"], backends))
    children.append(spawn([args.haproxy, "-db", "-f", cfg], os.path.join(state, "haproxy.log")))
    return local, children


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("status_json")
    parser.add_argument("state")
    parser.add_argument("--blog-service", required=True)
    parser.add_argument("--cargo-lambda", required=True)
    parser.add_argument("--haproxy", required=True)
    args = parser.parse_args()
    os.makedirs(args.state, exist_ok=True)
    with open(args.status_json) as f:
        resources = json.load(f)["status"]["resources"]
    config = declared(resources)
    if config["tasks"] < 1:
        sys.exit("data-plane: the service wants 0 tasks; nothing to run behind the load balancer")
    local, children = start(args, args.state, config, dict(os.environ))

    def stop(*_):
        for child in children:
            child.terminate()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    wait_until_up(local["FUNCTIONS_URL"] + "/healthz", children)
    wait_until_up(local["CONTAINERS_URL"] + config["health_path"], children)
    print(f"functions {local['FUNCTIONS_URL']}/", flush=True)
    print(f"containers {local['CONTAINERS_URL']}/", flush=True)
    print(f"tasks {config['tasks']} health {config['health_path']}", flush=True)
    while all(child.poll() is None for child in children):
        time.sleep(1)
    stop()


if __name__ == "__main__":
    main()
