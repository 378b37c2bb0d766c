#!/usr/bin/env python3
"""data-plane.py — run, on loopback, the data plane of what the operator declared in the emulator.

moto stores a function and a service but runs neither. This reads back what the operator wrote —
the function's environment; the task definition's environment, secrets and port; the service's
desired count; the target group's health-check path — and runs it:

  * the function variant: `cargo lambda watch` (the standard Rust Lambda tooling: a local Lambda
    runtime API behind an HTTP endpoint speaking API Gateway's payload 2.0) running blog-service;
  * the container variant: the desired number of blog-service processes behind HAProxy, which
    health-checks the declared path, as the ALB does.

FUNCTIONS_URL and CONTAINERS_URL are the one thing changed: the AWS URLs become the local ones, so
each local page reaches the other local variant. Everything else is as the operator wrote it.

Usage (with a Python that has boto3, e.g. moto's):
  data-plane.py STATUS_JSON STATE_DIR --blog-service BIN --cargo-lambda BIN --haproxy BIN
It prints `functions <url>` and `containers <url>` once both answer, then runs until killed.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import boto3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def declared(resources):
    """What the operator declared, read back from the emulator."""
    lam, ecs, elb, secrets = (boto3.client(n) for n in ("lambda", "ecs", "elbv2", "secretsmanager"))
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
        "task_env": task_env,
        "port": container["portMappings"][0]["containerPort"],
        "tasks": service["desiredCount"],
        "health_path": group.get("HealthCheckPath", "/"),
    }


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
  option httpchk GET {health_path}
  http-check expect status 200
{servers}
"""


def wait_until_up(url, seconds=300):
    deadline = time.time() + seconds
    while time.time() < deadline:
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
        "FUNCTIONS_URL": f"http://127.0.0.1:{functions_port}/lambda-url/blog-service",
        "CONTAINERS_URL": f"http://127.0.0.1:{containers_port}",
    }
    children = []
    function_env = {**config["function_env"], **local}
    env_file = os.path.join(state, "function.env")
    with open(env_file, "w") as f:
        f.writelines(f"{k}={v}\n" for k, v in function_env.items())
    watch = [args.cargo_lambda, "lambda", "watch", "--quiet", "--ignore-changes", "--disable-cors",
             "--invoke-port", str(functions_port), "--env-file", env_file, "--bin", "blog-service"]
    log = open(os.path.join(state, "function.log"), "w")
    children.append(subprocess.Popen(watch, env=aws_env, stdout=log, stderr=subprocess.STDOUT))
    backends = [free_port() for _ in range(config["tasks"])]
    for i, port in enumerate(backends):
        env = {**aws_env, **config["task_env"], **local, "PORT": str(port), "LOG_FORMAT": "text"}
        log = open(os.path.join(state, f"task{i}.log"), "w")
        children.append(subprocess.Popen([args.blog_service], env=env, stdout=log, stderr=subprocess.STDOUT))
    cfg = os.path.join(state, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(haproxy_config(containers_port, config["health_path"], backends))
    log = open(os.path.join(state, "haproxy.log"), "w")
    children.append(subprocess.Popen([args.haproxy, "-db", "-f", cfg], stdout=log, stderr=subprocess.STDOUT))
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
    wait_until_up(local["FUNCTIONS_URL"] + "/healthz")
    wait_until_up(local["CONTAINERS_URL"] + config["health_path"])
    print(f"functions {local['FUNCTIONS_URL']}/", flush=True)
    print(f"containers {local['CONTAINERS_URL']}/", flush=True)
    print(f"tasks {config['tasks']} health {config['health_path']}", flush=True)
    while all(child.poll() is None for child in children):
        time.sleep(1)
    stop()


if __name__ == "__main__":
    main()
