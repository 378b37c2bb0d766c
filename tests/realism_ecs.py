"""ECS's canary, linear and blue/green service deployments, played for the realism layer
(aws-realism.py): the emulator keeps no deploymentConfiguration and has no service-deployment API.

A service updated to a new task definition under CANARY, LINEAR or BLUE_GREEN with a PAUSE hook
at PRE_PRODUCTION_TRAFFIC_SHIFT gets a service deployment that stops at that hook before every
production traffic shift, as ECS does. ContinueServiceDeployment(CONTINUE) shifts the production
listener rule's weights to the next step (a ModifyRule sent to the emulator, so DescribeRules shows
where readers go); after `ecs_step` seconds the next hook waits, and after the last shift the bake
(`ecs_step` seconds) ends SUCCESSFUL. ContinueServiceDeployment(ROLLBACK) or
StopServiceDeployment(ROLLBACK) puts every reader back on the stable target group and the service
back on its stable task definition. The bake times the request asks for are compressed to
`ecs_step`; what ECS does with its tasks between stages is not played.
"""

import http.client
import itertools
import json
import threading
import time
import urllib.parse

PAUSE_STAGE = "PRE_PRODUCTION_TRAFFIC_SHIFT"
IN_FLIGHT = {"PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED"}


class Deployments:
    def __init__(self, upstream, config):
        self.upstream = upstream
        self.step = config.get("ecs_step", 2)
        self.lock = threading.RLock()
        self.services = {}  # (region, service name) -> the settings ECS keeps and the emulator drops
        self.deployments = {}  # (region, service name) -> its deployments, oldest first
        self.ids = itertools.count(1)

    # What the operator sent.

    def remember(self, region, operation, request, data):
        """After a successful CreateService or UpdateService: keep its settings; a new task
        definition under a progressive strategy starts a deployment."""
        service = (json.loads(data or b"{}").get("service") or {})
        name = service.get("serviceName") or request.get("serviceName") or request.get("service", "").rsplit("/", 1)[-1]
        with self.lock:
            kept = self.services.setdefault((region, name), {"swapped": False})
            before = kept.get("taskDefinition")
            for field in ("deploymentConfiguration", "loadBalancers", "taskDefinition"):
                if field in request:
                    kept[field] = request[field]
            kept["serviceArn"] = service.get("serviceArn", kept.get("serviceArn", ""))
            kept["clusterArn"] = service.get("clusterArn", kept.get("clusterArn", ""))
            target = request.get("taskDefinition")
            if operation == "UpdateService" and before and target and target != before and self.progressive(kept):
                self.start(region, name, kept, before, target)

    def progressive(self, kept):
        config = kept.get("deploymentConfiguration") or {}
        hooks = config.get("lifecycleHooks") or []
        paused = any(h.get("targetType") == "PAUSE" and PAUSE_STAGE in h.get("lifecycleStages", []) for h in hooks)
        return config.get("strategy") in ("CANARY", "LINEAR", "BLUE_GREEN") and paused

    def start(self, region, name, kept, source, target):
        config = kept["deploymentConfiguration"]
        if config["strategy"] == "CANARY":
            weights = [config.get("canaryConfiguration", {}).get("canaryPercent", 5.0), 100.0]
        elif config["strategy"] == "LINEAR":
            step = config.get("linearConfiguration", {}).get("stepPercent", 10.0)
            weights = [min(step * i, 100.0) for i in range(1, int(100 // step) + 2) if step * (i - 1) < 100]
        else:
            weights = [100.0]
        cluster = kept["clusterArn"].rsplit("/", 1)[-1]
        arn = kept["serviceArn"].replace(":service/", ":service-deployment/") + f"/d{next(self.ids)}"
        if f"/{cluster}/" not in arn:
            arn = arn.replace(":service-deployment/", f":service-deployment/{cluster}/")
        deployment = {"arn": arn, "status": "IN_PROGRESS", "stage": PAUSE_STAGE, "weights": weights, "next": 0,
                      "weight": 0.0, "hook": self.hook(), "source": source, "target": target, "reason": "",
                      "created": time.time(), "since": time.monotonic(), "region": region, "name": name}
        for earlier in self.deployments.get((region, name), []):
            if earlier["status"] in IN_FLIGHT:
                earlier.update(status="STOPPED", reason="a newer deployment replaced it")
        self.deployments.setdefault((region, name), []).append(deployment)

    def hook(self):
        return {"hookId": f"hook-{next(self.ids)}", "targetType": "PAUSE", "status": "AWAITING_ACTION"}

    # ECS's clock.

    def advance(self, deployment):
        """Moves a deployment on by the time passed: the next hook after a shift's bake, success
        after the final bake, and a rollback done after it was seen once."""
        waited = time.monotonic() - deployment["since"]
        if deployment["status"] == "ROLLBACK_IN_PROGRESS" and deployment.get("shown"):
            deployment.update(status="ROLLBACK_SUCCESSFUL", stage="CLEAN_UP")
        elif deployment["status"] != "IN_PROGRESS" or waited < self.step:
            return
        elif deployment["stage"] == "PRODUCTION_TRAFFIC_SHIFT" and deployment["weight"] >= 100:
            deployment.update(stage="BAKE_TIME", since=time.monotonic())
        elif deployment["stage"] == "PRODUCTION_TRAFFIC_SHIFT":
            deployment.update(stage=PAUSE_STAGE, hook=self.hook(), since=time.monotonic())
        elif deployment["stage"] == "BAKE_TIME":
            deployment.update(status="SUCCESSFUL", stage="CLEAN_UP")
            self.services[(deployment["region"], deployment["name"])]["swapped"] ^= True

    def find(self, arn):
        for deployments in self.deployments.values():
            for deployment in deployments:
                if deployment["arn"] == arn:
                    return deployment
        return None

    # The calls the emulator does not have, answered here.

    def answer(self, operation, request):
        """(status, JSON body) for the service-deployment API, or None for anything else."""
        calls = {"ListServiceDeployments": self.listed, "DescribeServiceDeployments": self.described,
                 "ContinueServiceDeployment": self.continued, "StopServiceDeployment": self.stopped}
        if operation not in calls:
            return None
        with self.lock:
            return calls[operation](request)

    def listed(self, request):
        name = request.get("service", "").rsplit("/", 1)[-1]
        found = [d for (region, service), ds in self.deployments.items() if service == name for d in ds]
        for deployment in found:
            self.advance(deployment)
        briefs = [{"serviceDeploymentArn": d["arn"], "status": d["status"], "statusReason": d["reason"],
                   "createdAt": d["created"]} for d in found]
        return 200, {"serviceDeployments": briefs}

    def described(self, request):
        found = [d for d in map(self.find, request.get("serviceDeploymentArns", [])) if d]
        for deployment in found:
            self.advance(deployment)
            deployment["shown"] = True
        return 200, {"serviceDeployments": [self.full(d) for d in found], "failures": []}

    def full(self, d):
        hooks = [d["hook"]] if d.get("hook") else []
        return {"serviceDeploymentArn": d["arn"], "status": d["status"], "statusReason": d["reason"],
                "lifecycleStage": d["stage"], "createdAt": d["created"], "lifecycleHookDetails": hooks,
                "targetServiceRevision": {"arn": d["target"], "requestedProductionTrafficWeight": d["weight"]},
                "sourceServiceRevisions": [{"arn": d["source"],
                                            "requestedProductionTrafficWeight": 100.0 - d["weight"]}]}

    def continued(self, request):
        deployment = self.find(request.get("serviceDeploymentArn", ""))
        hook = (deployment or {}).get("hook") or {}
        if not deployment or hook.get("hookId") != request.get("hookId") or hook.get("status") != "AWAITING_ACTION":
            return 400, {"__type": "InvalidParameterException", "message": "no lifecycle hook awaits that answer"}
        if request.get("action") == "ROLLBACK":
            hook["status"] = "FAILED"
            self.roll_back(deployment, "rolled back at a lifecycle hook")
            return 200, {}
        hook["status"] = "SUCCEEDED"
        deployment.update(weight=deployment["weights"][deployment["next"]], next=deployment["next"] + 1,
                          stage="PRODUCTION_TRAFFIC_SHIFT", since=time.monotonic())
        self.shift(deployment)
        return 200, {}

    def stopped(self, request):
        deployment = self.find(request.get("serviceDeploymentArn", ""))
        if not deployment or deployment["status"] not in IN_FLIGHT:
            return 400, {"__type": "InvalidParameterException", "message": "the service deployment is not in progress"}
        self.roll_back(deployment, "stopped with rollback")
        return 200, {"serviceDeploymentArn": deployment["arn"]}

    def roll_back(self, deployment, why):
        deployment.update(status="ROLLBACK_IN_PROGRESS", reason=why, weight=0.0, stage="RECONCILE_SERVICE",
                          since=time.monotonic(), shown=False)
        self.shift(deployment)
        kept = self.services[(deployment["region"], deployment["name"])]
        kept["taskDefinition"] = deployment["source"]
        cluster = kept["clusterArn"].rsplit("/", 1)[-1]
        body = {"cluster": cluster, "service": deployment["name"], "taskDefinition": deployment["source"]}
        self.send(deployment["region"], "ecs", "AmazonEC2ContainerServiceV20141113.UpdateService", json.dumps(body).encode())

    # The emulator told what ECS does to it.

    def shift(self, deployment):
        """The production rule's weights as ECS sets them for the deployment's weight."""
        kept = self.services[(deployment["region"], deployment["name"])]
        balancer = (kept.get("loadBalancers") or [{}])[0]
        advanced = balancer.get("advancedConfiguration") or {}
        rule = advanced.get("productionListenerRule")
        if not rule:
            return
        stable, new = balancer.get("targetGroupArn"), advanced.get("alternateTargetGroupArn")
        if kept["swapped"]:
            stable, new = new, stable
        weight = int(deployment["weight"])
        form = {"Action": "ModifyRule", "Version": "2015-12-01", "RuleArn": rule,
                "Actions.member.1.Type": "forward"}
        prefix = "Actions.member.1.ForwardConfig.TargetGroups.member"
        for i, (group, share) in enumerate(((stable, 100 - weight), (new, weight)), 1):
            form[f"{prefix}.{i}.TargetGroupArn"] = group
            form[f"{prefix}.{i}.Weight"] = str(share)
        self.send(deployment["region"], "elasticloadbalancing", None, urllib.parse.urlencode(form).encode())

    def send(self, region, service, target, body):
        auth = (f"AWS4-HMAC-SHA256 Credential=realism/20260101/{region}/{service}/aws4_request, "
                "SignedHeaders=host, Signature=0")
        sent = {"Authorization": auth, "Host": f"{self.upstream.hostname}:{self.upstream.port}"}
        if target:
            sent.update({"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
        else:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        conn.request("POST", "/", body=body, headers=sent)
        conn.getresponse().read()
        conn.close()

    # What the emulator answers, completed.

    def rewrite_services(self, region, found):
        """DescribeServices with the strategy ECS keeps, and a running deployment's rollout."""
        with self.lock:
            for service in found.get("services", []):
                kept = self.services.get((region, service.get("serviceName", "")))
                if not kept:
                    continue
                if kept.get("deploymentConfiguration"):
                    service["deploymentConfiguration"] = kept["deploymentConfiguration"]
                running = [d for d in self.deployments.get((region, service["serviceName"]), []) if d["status"] in IN_FLIGHT]
                for deployment in service.get("deployments", []):
                    if running and deployment.get("status") == "PRIMARY":
                        deployment["rolloutState"] = "IN_PROGRESS"
        return found
