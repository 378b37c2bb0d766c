#!/usr/bin/env python3
"""The realism and fault layer: an HTTP proxy on loopback between the operator and the AWS emulator.

The emulator answers at once, never throttles and never runs anything. This proxy plays what AWS
does instead (see README "What the emulators cannot show"), from a JSON configuration:

  throttle, error5xx   per-operation rates of ThrottlingException / 500; `after_effect` of them are
                       sent on to the emulator first, so the call takes effect and its answer is lost
  latency_ms, stall    added latency (0..latency_ms), and a rate of answers that never come (the
                       connection is held for stall_seconds, then dropped)
  iam_propagation      seconds after CreateRole during which Lambda refuses the role
                       ("cannot be assumed by Lambda", as AWS says)
  lambda_pending       seconds a new function is Pending / an update InProgress; an update sent
                       meanwhile gets ResourceConflictException
  alb_provisioning     seconds a new load balancer stays `provisioning`
  dynamodb_creating    seconds a new table stays CREATING
  ecs_start            seconds before a service's tasks run and its rollout is COMPLETED;
                       ecs_health "fail" makes the circuit breaker roll it back (FAILED) instead
  lose_first           {operation: n}: the first n calls of each take effect and lose their answer
                       (a 500, which the SDK retries), whatever the rates above say
  outage               [start, end] seconds after the proxy starts during which every call is a 503
  deny                 {region: [operation, ...]}: calls of those operations (or "*") signed for that
                       region are refused with AccessDenied, as a service control policy that
                       denies them there makes AWS answer
  DynamoDB item writes (PutItem, UpdateItem, DeleteItem, TransactWriteItems) are sent on one at a
  time: DynamoDB checks a write's condition and applies it atomically, while the emulator, serving
  requests on many threads, can let two conditional writes of one item both pass their check.
  API Gateway domain names get the regional endpoint AWS gives them (the emulator leaves it out).
  GetMetricData percentile queries (p95) are left out: moto cannot compute them and fails the whole
  request; the caller sees no percentile data instead.
  dynamodb_replica     seconds a global-table replica added by UpdateTable (ReplicaUpdates) stays
                       CREATING in the home table's Replicas (or DELETING once removed); the emulator
                       ignores replica updates, so this layer lists them and, when one turns ACTIVE,
                       makes the replica table in its region (and drops it once deleted). Adding the
                       home region or a region already listed is refused, as AWS does; a replica's
                       own DescribeTable lists the other members and the global table version
  route53_health       seconds a new Route 53 health check reports failure before its checkers report
                       success (the emulator reports success at once); CreateHealthCheck repeated with
                       the same CallerReference returns the same check, as AWS does
  (always)             Invoke: the emulator runs no function, so a direct invoke of a version is
                       answered as the blog's handler answers an HTTP API GET: statusCode 200, or
                       the status that version's REALISM_INVOKE_STATUS variable names (how a test
                       makes a version fail the operator's pre-traffic check)
  standalone           true: run on after the process that started it exits (the local stack's
                       CloudWatch proxy); otherwise the proxy follows its parent
  ecs_step             seconds each stage of a progressive ECS service deployment takes (default 2):
                       the emulator keeps no deployment strategy and has no service-deployment API,
                       so CANARY / LINEAR / BLUE_GREEN deployments with a PAUSE hook are played here,
                       shifting the production listener rule's weights (tests/realism_ecs.py)
  acm_dns_validation   seconds ACM takes to issue a DNS-validated certificate once every validation
                       CNAME it asked for is in Route 53 (written through this proxy); until then it
                       stays PENDING_VALIDATION, whatever the emulator says, and ELB and API Gateway
                       refuse it ("not issued"), as AWS does

Every decision is drawn from `seed`, the operation and how many times that operation was seen, so
a run replays exactly; and every asynchronous state is shown at least once after its create, so a
slow run cannot skip it. Counts of requests by operation and of injected faults are served at
GET /__realism/stats, with the most requests each service saw within one second. Usage: aws-realism.py UPSTREAM_URL CONFIG_JSON PORT_FILE
"""

import hashlib
import http.client
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import contextvars
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import realism_ecs

UPSTREAM = urllib.parse.urlparse(sys.argv[1])
REGION = contextvars.ContextVar("region", default="us-east-1")  # the region of the request being handled
CONFIG = json.loads(sys.argv[2])
STARTED = time.monotonic()
LOCK = threading.Lock()
SEEN = {}  # operation -> requests so far
FAULTS = {}  # "fault operation" -> count
BORN = {}  # ("kind", key) -> monotonic time of the last create or update
SHOWN = {}  # ("kind", key) -> how often that state was shown since
RECORDS = {}  # Route 53 CNAME name -> value, as written through this proxy
REQUESTED = set()  # certificate ARNs requested through this proxy
ISSUED = set()  # ... and shown as ISSUED
REPLICAS = {}  # (home region, table) -> {replica region: "CREATING" | "ACTIVE" | "DELETING"}
HEALTH_CHECKS = {}  # CallerReference -> the CreateHealthCheck answer
RECENT = {}  # signing service -> monotonic times of its requests in the last second
PEAK = {}  # signing service -> most requests seen within one second
ITEM_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}
ITEM_WRITE_LOCK = threading.Lock()  # DynamoDB applies a conditional write atomically; the emulator does not
ECS = realism_ecs.Deployments(UPSTREAM, CONFIG)  # ECS's progressive service deployments (realism_ecs.py)

LAMBDA_ROUTES = [
    ("POST", r"/2015-03-31/functions/?$", "CreateFunction"),
    ("GET", r"/2015-03-31/functions/[^/]+/?$", "GetFunction"),
    ("DELETE", r"/2015-03-31/functions/[^/]+/?$", "DeleteFunction"),
    ("GET", r"/2015-03-31/functions/[^/]+/configuration$", "GetFunctionConfiguration"),
    ("PUT", r"/2015-03-31/functions/[^/]+/configuration$", "UpdateFunctionConfiguration"),
    ("PUT", r"/2015-03-31/functions/[^/]+/code$", "UpdateFunctionCode"),
    ("POST", r"/2015-03-31/functions/[^/]+/versions$", "PublishVersion"),
    ("GET", r"/2015-03-31/functions/[^/]+/versions$", "ListVersionsByFunction"),
    ("POST", r"/2015-03-31/functions/[^/]+/aliases$", "CreateAlias"),
    ("PUT", r"/2015-03-31/functions/[^/]+/aliases/[^/]+$", "UpdateAlias"),
    ("GET", r"/2015-03-31/functions/[^/]+/aliases/[^/]+$", "GetAlias"),
    ("POST", r"/2015-03-31/functions/[^/]+/policy$", "AddPermission"),
    ("GET", r"/2015-03-31/functions/[^/]+/policy$", "GetPolicy"),
    ("DELETE", r"/2015-03-31/functions/[^/]+/policy/[^/]+$", "RemovePermission"),
    ("POST", r"/2015-03-31/functions/[^/]+/invocations$", "Invoke"),
]
ROUTE53_ROUTES = [
    ("POST", r"/2013-04-01/hostedzone/[^/]+/rrset/?$", "ChangeResourceRecordSets"),
    ("GET", r"/2013-04-01/hostedzone/[^/]+/rrset/?$", "ListResourceRecordSets"),
    ("GET", r"/2013-04-01/hostedzonesbyname/?$", "ListHostedZonesByName"),
    ("GET", r"/2013-04-01/hostedzone/[^/]+/?$", "GetHostedZone"),
    ("POST", r"/2013-04-01/hostedzone/?$", "CreateHostedZone"),
    ("POST", r"/2013-04-01/healthcheck/?$", "CreateHealthCheck"),
    ("GET", r"/2013-04-01/healthcheck/?$", "ListHealthChecks"),
    ("GET", r"/2013-04-01/healthcheck/[^/]+/status$", "GetHealthCheckStatus"),
    ("GET", r"/2013-04-01/healthcheck/[^/]+/?$", "GetHealthCheck"),
    ("DELETE", r"/2013-04-01/healthcheck/[^/]+/?$", "DeleteHealthCheck"),
    ("POST", r"/2013-04-01/tags/healthcheck/[^/]+$", "ChangeTagsForResource"),
    ("POST", r"/2013-04-01/tags/healthcheck/?$", "ListTagsForResources"),
]
# API Gateway v2's calls by route, so a configuration can name them (`lose_first`, `throttle`).
APIGATEWAY_ROUTES = [
    ("POST", r"/v2/apis/?$", "CreateApi"),
    ("GET", r"/v2/apis/?$", "GetApis"),
    ("GET", r"/v2/apis/[^/]+/?$", "GetApi"),
    ("PATCH", r"/v2/apis/[^/]+/?$", "UpdateApi"),
    ("DELETE", r"/v2/apis/[^/]+/?$", "DeleteApi"),
    ("POST", r"/v2/apis/[^/]+/integrations/?$", "CreateIntegration"),
    ("GET", r"/v2/apis/[^/]+/integrations/?$", "GetIntegrations"),
    ("PATCH", r"/v2/apis/[^/]+/integrations/[^/]+/?$", "UpdateIntegration"),
    ("POST", r"/v2/apis/[^/]+/routes/?$", "CreateRoute"),
    ("GET", r"/v2/apis/[^/]+/routes/?$", "GetRoutes"),
    ("PATCH", r"/v2/apis/[^/]+/routes/[^/]+/?$", "UpdateRoute"),
    ("POST", r"/v2/apis/[^/]+/stages/?$", "CreateStage"),
    ("GET", r"/v2/apis/[^/]+/stages/?$", "GetStages"),
    ("GET", r"/v2/apis/[^/]+/stages/[^/]+/?$", "GetStage"),
    ("PATCH", r"/v2/apis/[^/]+/stages/[^/]+/?$", "UpdateStage"),
    ("POST", r"/v2/domainnames/?$", "CreateDomainName"),
    ("GET", r"/v2/domainnames/[^/]+/?$", "GetDomainName"),
    ("DELETE", r"/v2/domainnames/[^/]+/?$", "DeleteDomainName"),
    ("POST", r"/v2/domainnames/[^/]+/apimappings/?$", "CreateApiMapping"),
    ("GET", r"/v2/domainnames/[^/]+/apimappings/?$", "GetApiMappings"),
    ("DELETE", r"/v2/domainnames/[^/]+/apimappings/[^/]+/?$", "DeleteApiMapping"),
]
LAMBDA_UPDATES = {"UpdateFunctionConfiguration", "UpdateFunctionCode", "PublishVersion"}


def region_of(headers):
    """The region in the credential scope: .../REGION/service/aws4_request."""
    match = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/[^/]+/aws4_request", headers.get("Authorization", ""))
    return match.group(1) if match else "us-east-1"


def service_of(headers):
    """The signing name in the credential scope: .../region/SERVICE/aws4_request."""
    match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request", headers.get("Authorization", ""))
    return match.group(1) if match else "unknown"


def operation_of(method, path, headers, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    match = re.search(r"/operation/([A-Za-z]+)$", path)
    if match:
        return match.group(1)
    if body.startswith(b"Action=") or b"&Action=" in body:
        return urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", ["?"])[0]
    route = path.split("?")[0]
    for verb, pattern, name in LAMBDA_ROUTES + ROUTE53_ROUTES + APIGATEWAY_ROUTES:
        if method == verb and re.search(pattern, route):
            return name
    return f"{method}:{re.sub(r'/[a-z0-9]{6,}(?=/|$)', '/{id}', route)}"


def draw(operation, salt):
    """A number in [0, 1) fixed by the seed, the operation, how often it was seen and the salt."""
    with LOCK:
        n = SEEN.get(operation, 0)
    digest = hashlib.sha256(f"{CONFIG.get('seed', 0)}/{operation}/{n}/{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def rate(name, operation):
    value = CONFIG.get(name, 0)
    if isinstance(value, dict):
        return value.get(operation, value.get("*", 0))
    return value


def count_fault(kind, operation):
    with LOCK:
        FAULTS[f"{kind} {operation}"] = FAULTS.get(f"{kind} {operation}", 0) + 1


def age(kind, key):
    with LOCK:
        born = BORN.get((kind, key))
    return None if born is None else time.monotonic() - born


def mark(kind, key):
    with LOCK:
        BORN[(kind, key)] = time.monotonic()
        SHOWN.pop((kind, key), None)


def still(kind, key, seconds):
    """Whether the state begun by `mark(kind, key)` still shows: for `seconds`, and at least once
    whatever the timing, so a run always meets it (the seed fixes everything else)."""
    with LOCK:
        born = BORN.get((kind, key))
        if born is None:
            return False
        shown = SHOWN.get((kind, key), 0)
        if time.monotonic() - born >= seconds and shown >= 1:
            return False
        SHOWN[(kind, key)] = shown + 1
        return True


def function_name(path):
    match = re.search(r"/functions/([^/?]+)", path)
    return urllib.parse.unquote(match.group(1)).rsplit(":function:", 1)[-1].split(":")[0] if match else ""


def error_body(service, code, message):
    """The error in the protocol the service speaks, so the SDK reads the code."""
    if service in ("iam", "elasticloadbalancing", "ec2", "monitoring"):
        body = f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error></ErrorResponse>"
        if service == "ec2":
            body = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors></Response>"
        return "text/xml", body.encode(), {}
    body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    return "application/x-amz-json-1.1", body, {"x-amzn-ErrorType": code}


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/__realism/stats":
            with LOCK:
                stats = {"requests": dict(SEEN), "faults": dict(FAULTS), "peak_per_second": dict(PEAK), "uptime": time.monotonic() - STARTED}
            return self.reply(200, "application/json", json.dumps(stats).encode(), {})
        self.handle_aws()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_aws = None  # set below

    def reply(self, status, content_type, body, headers):
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-type"):
                self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def forward(self, body):
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            existing = self.existing_by_name(body)
            if existing is not None:
                return existing
            body = without_percentiles(body)
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
        headers["Host"] = f"{UPSTREAM.hostname}:{UPSTREAM.port}"
        conn.request(self.command, self.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, dict(response.getheaders()), data

    def invoke(self):
        """A direct invoke of a version, answered from that version's configuration (see above)."""
        route, _, query = self.path.partition("?")
        qualifier = urllib.parse.parse_qs(query).get("Qualifier", ["$LATEST"])[0]
        name = route.split("/functions/", 1)[1].split("/", 1)[0]
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
        target = f"/2015-03-31/functions/{name}/configuration?Qualifier={urllib.parse.quote(qualifier)}"
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        if response.status != 200:
            return response.status, response.getheader("Content-Type", "application/json"), data, {}
        variables = as_json(data).get("Environment", {}).get("Variables", {})
        status = int(variables.get("REALISM_INVOKE_STATUS", "200"))
        count_fault(f"played invoke {status}", "Invoke")
        answer = {"statusCode": status, "headers": {"content-type": "application/json"}, "body": "{}"}
        return 200, "application/json", json.dumps(answer).encode(), {"X-Amz-Executed-Version": qualifier}

    def existing_listener(self, request):
        """ELB's CreateListener is idempotent too: a repeat on a port the load balancer already
        listens on, with the same settings, answers with that listener (the emulator adds one)."""
        lookup = urllib.parse.urlencode({"Action": "DescribeListeners", "Version": request.get("Version", ""),
                                         "LoadBalancerArn": request.get("LoadBalancerArn", "")}).encode()
        status, headers, data = self.forward(lookup)
        port = f"<Port>{request.get('Port')}</Port>".encode()
        # The listener's own port, not a redirect's inside its actions.
        own = lambda m: re.sub(rb"<(DefaultActions|Certificates)>.*?</\1>", b"", m, flags=re.S)
        same = [m for m in members(data, b"Listeners") if port in own(m)]
        if status != 200 or not same:
            return None
        count_fault("idempotent CreateListener", "CreateListener")
        body = (b'<CreateListenerResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
                b"<CreateListenerResult><Listeners>" + same[0] + b"</Listeners></CreateListenerResult>"
                b"<ResponseMetadata><RequestId>realism</RequestId></ResponseMetadata></CreateListenerResponse>")
        return status, headers, body

    def existing_by_name(self, body):
        """ELB's CreateLoadBalancer and CreateTargetGroup are idempotent on the name: AWS answers a
        repeat with the settings it already has with the one that exists. The emulator makes a second
        load balancer (which a lookup by name then cannot see) and refuses a second target group."""
        request = form(body)
        if request.get("Action") == "CreateListener":
            return self.existing_listener(request)
        describe = {"CreateLoadBalancer": ("DescribeLoadBalancers", b"<LoadBalancerArn>"),
                    "CreateTargetGroup": ("DescribeTargetGroups", b"<TargetGroupArn>")}.get(request.get("Action"))
        if describe is None or not request.get("Name"):
            return None
        lookup = urllib.parse.urlencode({"Action": describe[0], "Version": request.get("Version", ""),
                                         "Names.member.1": request["Name"]}).encode()
        status, headers, data = self.forward(lookup)
        if status != 200 or describe[1] not in data:
            return None
        count_fault("idempotent " + request["Action"], request["Action"])
        return status, headers, data.replace(describe[0].encode(), request["Action"].encode())


def members(data, container):
    """The top-level <member> elements of <container> in a query-protocol XML answer, as bytes."""
    start, end = data.find(b"<" + container + b">"), data.find(b"</" + container + b">")
    if start < 0 or end < 0:
        return []
    found, depth, begin = [], 0, 0
    for tag in re.finditer(rb"<(/?)member>", data[start:end]):
        if not tag.group(1):
            begin = tag.start() if depth == 0 else begin
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                found.append(data[start + begin:start + tag.end()])
    return found


def without_percentiles(body):
    """moto cannot compute percentiles and fails a whole GetMetricData that asks for one (a 500):
    the percentile queries are left out, so the caller sees no data for them, as for a metric
    without percentile data. The other queries are renumbered, as the query protocol wants."""
    request = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    if ("Action", "GetMetricData") not in request:
        return body
    queries, rest = {}, []
    for key, value in request:
        match = re.match(r"MetricDataQueries\.member\.(\d+)\.(.+)", key)
        if match:
            queries.setdefault(int(match.group(1)), []).append((match.group(2), value))
        else:
            rest.append((key, value))
    kept = [fields for _, fields in sorted(queries.items())
            if not any(k == "MetricStat.Stat" and re.fullmatch(r"[pP]\d+(\.\d+)?", v) for k, v in fields)]
    if len(kept) < len(queries):
        count_fault("percentiles left out", "GetMetricData")
    for i, fields in enumerate(kept, 1):
        rest.extend((f"MetricDataQueries.member.{i}.{k}", v) for k, v in fields)
    return urllib.parse.urlencode(rest).encode()


def count_rate(service):
    """The most requests of one service within any one second so far."""
    now = time.monotonic()
    with LOCK:
        recent = [t for t in RECENT.get(service, []) if now - t < 1.0] + [now]
        RECENT[service] = recent
        PEAK[service] = max(PEAK.get(service, 0), len(recent))


def handle_aws(self):
    length = int(self.headers.get("Content-Length", 0) or 0)
    body = self.rfile.read(length) if length else b""
    service = service_of(self.headers)
    REGION.set(region_of(self.headers))
    count_rate(service)
    operation = operation_of(self.command, self.path, self.headers, body)
    try:
        answer = decide(self, service, operation, body)
    finally:
        with LOCK:
            SEEN[operation] = SEEN.get(operation, 0) + 1
    if answer is not None:
        status, content_type, data, headers = answer
        self.reply(status, content_type, data, headers)


def decide(self, service, operation, body):
    """Returns (status, content type, body, headers), or None when the connection was dropped."""
    latency = CONFIG.get("latency_ms", 0)
    if latency:
        time.sleep(draw(operation, "latency") * latency / 1000)
    outage = CONFIG.get("outage")
    if outage and outage[0] <= time.monotonic() - STARTED < outage[1]:
        count_fault("outage", operation)
        return (503, *error_body(service, "ServiceUnavailable", "injected outage"))
    denied = CONFIG.get("deny", {}).get(REGION.get(), [])
    if operation in denied or "*" in denied:
        count_fault("denied", operation)
        code = {"ec2": "UnauthorizedOperation", "iam": "AccessDenied", "elasticloadbalancing": "AccessDenied"}
        why = f"not authorized to perform: {operation} in {REGION.get()} with an explicit deny in a service control policy"
        return (403, *error_body(service, code.get(service, "AccessDeniedException"), why))
    if draw(operation, "stall") < rate("stall", operation):
        count_fault("stall", operation)
        time.sleep(CONFIG.get("stall_seconds", 30))
        self.close_connection = True
        return None
    if operation == "CreateHealthCheck" and "route53_health" in CONFIG:
        reference = re.search(r"<CallerReference>([^<]+)</CallerReference>", body.decode("utf-8", "replace"))
        with LOCK:
            earlier = HEALTH_CHECKS.get(reference.group(1)) if reference else None
        if earlier is not None:
            count_fault("idempotent CreateHealthCheck", operation)
            return 201, "text/xml", earlier, {}
    if operation == "Invoke":
        return self.invoke()
    if service == "ecs":
        played = ECS.answer(operation, as_json(body))
        if played:
            count_fault(f"played {operation}", operation)
            return played[0], "application/x-amz-json-1.1", json.dumps(played[1]).encode(), {}
    if lost_first(operation):
        status, headers, data = self.forward(body)
        if 200 <= status < 300:
            remember(service, operation, self.path, body, data)
        count_fault("lost answer", operation)
        return (500, *error_body(service, "InternalFailure", "injected: the call took effect, its answer was lost"))
    refusal = realism_refusal(service, operation, self.path, body)
    if refusal:
        count_fault(refusal[0], operation)
        return (refusal[1], *error_body(service, refusal[2], refusal[3]))
    fault = None
    if draw(operation, "throttle") < rate("throttle", operation):
        fault = (400, "ThrottlingException" if service != "ec2" else "RequestLimitExceeded", "Rate exceeded")
    elif draw(operation, "5xx") < rate("error5xx", operation):
        fault = (500, "InternalFailure", "injected internal error")
    if fault and draw(operation, "after") >= CONFIG.get("after_effect", 0):
        count_fault("before " + fault[1], operation)
        return (fault[0], *error_body(service, fault[1], fault[2]))
    if service == "dynamodb" and operation in ITEM_WRITES:
        with ITEM_WRITE_LOCK:
            status, headers, data = self.forward(body)
    else:
        status, headers, data = self.forward(body)
    if 200 <= status < 300:
        remember(service, operation, self.path, body, data)
        data = rewrite(service, operation, self.path, data)
    if fault:
        count_fault("after " + fault[1], operation)
        return (fault[0], *error_body(service, fault[1], fault[2]))
    return status, headers.get("Content-Type", "application/json"), data, headers


def lost_first(operation):
    """Whether this call is among the first `lose_first[operation]` of its operation, which take
    effect and lose their answer."""
    with LOCK:
        seen = SEEN.get(operation, 0)
    return seen < CONFIG.get("lose_first", {}).get(operation, 0)


def form(body):
    return {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}


def as_json(body):
    try:
        return json.loads(body or b"{}")
    except ValueError:
        return {}


def realism_refusal(service, operation, path, body):
    """What AWS refuses here that the emulator accepts: (fault, status, code, message) or None."""
    if service == "lambda" and operation in ("CreateFunction", "UpdateFunctionConfiguration"):
        role = as_json(body).get("Role", "")
        if role and "iam_propagation" in CONFIG and still("role", role.rsplit("/", 1)[-1], CONFIG["iam_propagation"]):
            return ("iam_propagation", 400, "InvalidParameterValueException",
                    "The role defined for the function cannot be assumed by Lambda.")
    certificate = certificate_used(operation, body)
    if "acm_dns_validation" in CONFIG and certificate in REQUESTED and certificate not in ISSUED:
        if service == "apigateway":
            return ("certificate not issued", 400, "BadRequestException",
                    f"Certificate {certificate} in account is not yet issued")
        return ("certificate not issued", 400, "CertificateNotFound", f"Certificate '{certificate}' not found")
    if operation == "UpdateTable" and "dynamodb_replica" in CONFIG:
        request = as_json(body)
        listed = REPLICAS.get((REGION.get(), request.get("TableName", "")), {})
        for update in request.get("ReplicaUpdates", []):
            region = update.get("Create", {}).get("RegionName")
            if region == REGION.get():
                return ("replica refused", 400, "ValidationException",
                        f"Cannot add replica: the table already lives in {region}")
            if region in listed:
                return ("replica refused", 400, "ValidationException",
                        f"Failed to create a new replica of table with name: {request.get('TableName')} because "
                        f"one or more replicas already existed as tables.")
    if service == "lambda" and operation in LAMBDA_UPDATES:
        busy = age("function", function_name(path))
        if busy is not None and busy < CONFIG.get("lambda_pending", 0):
            return ("lambda_in_progress", 409, "ResourceConflictException",
                    "The operation cannot be performed at this time. An update is in progress for resource: "
                    + function_name(path))
    return None


def certificate_used(operation, body):
    """The certificate a listener or an API Gateway domain name is about to use, if any."""
    if operation in ("CreateListener", "ModifyListener"):
        return form(body).get("Certificates.member.1.CertificateArn")
    request = as_json(body)
    configurations = request.get("domainNameConfigurations") if isinstance(request, dict) else None
    return configurations[0].get("certificateArn") if isinstance(configurations, list) and configurations else None


def dns_name(name):
    return name.lower().rstrip(".")


def remember_records(body):
    """The CNAME records a Route 53 change batch writes or deletes."""
    for change in re.findall(r"<Change>(.*?)</Change>", body.decode("utf-8", "replace"), re.S):
        action = re.search(r"<Action>([A-Z]+)</Action>", change)
        name = re.search(r"<Name>([^<]+)</Name>", change)
        value = re.search(r"<Value>([^<]+)</Value>", change)
        if not (action and name and value and "<Type>CNAME</Type>" in change):
            continue
        with LOCK:
            if action.group(1) == "DELETE":
                RECORDS.pop(dns_name(name.group(1)), None)
            else:
                RECORDS[dns_name(name.group(1))] = dns_name(value.group(1))


def remember(service, operation, path, body, data):
    """Starts the clocks of the asynchronous states a successful create or update begins."""
    if operation == "ChangeResourceRecordSets":
        remember_records(body)
    elif operation == "RequestCertificate":
        REQUESTED.add(as_json(data).get("CertificateArn"))
    elif operation == "CreateRole":
        mark("role", form(body).get("RoleName", ""))
    elif service == "lambda" and operation == "CreateFunction":
        mark("function", as_json(body).get("FunctionName", ""))
        mark("function created", as_json(body).get("FunctionName", ""))
    elif service == "lambda" and operation in ("UpdateFunctionConfiguration", "UpdateFunctionCode"):
        mark("function", function_name(path))
    elif operation == "CreateLoadBalancer":
        mark("balancer", form(body).get("Name", ""))
    elif operation == "CreateTable":
        mark("table", as_json(body).get("TableName", ""))
    elif operation == "UpdateTable" and "dynamodb_replica" in CONFIG:
        request = as_json(body)
        table = request.get("TableName", "")
        for update in request.get("ReplicaUpdates", []):
            for action, state in (("Create", "CREATING"), ("Delete", "DELETING")):
                region = update.get(action, {}).get("RegionName")
                if region:
                    with LOCK:
                        REPLICAS.setdefault((REGION.get(), table), {})[region] = state
                    mark("replica", f"{table}/{region}")
    elif operation == "CreateHealthCheck" and "route53_health" in CONFIG:
        reference = re.search(r"<CallerReference>([^<]+)</CallerReference>", body.decode("utf-8", "replace"))
        created = re.search(r"<Id>([^<]+)</Id>", data.decode("utf-8", "replace"))
        if reference and created:
            with LOCK:
                HEALTH_CHECKS.setdefault(reference.group(1), data)
            mark("health check", created.group(1))
    elif operation in ("CreateService", "UpdateService"):
        request = as_json(body)
        mark("service", (request.get("serviceName") or request.get("service", "")).rsplit("/", 1)[-1])
        ECS.remember(REGION.get(), operation, request, data)


def rewrite(service, operation, path, data):
    """Shows the asynchronous states the emulator skips, while their clocks run."""
    if service == "lambda" and operation in ("GetFunction", "GetFunctionConfiguration"):
        if "lambda_pending" in CONFIG and still("function", function_name(path), CONFIG["lambda_pending"]):
            found = as_json(data)
            config = found.get("Configuration", found)
            config["LastUpdateStatus"] = "InProgress"
            created = age("function created", function_name(path))
            if created is not None and created < CONFIG["lambda_pending"]:
                config["State"] = "Pending"
            count_fault("shown lambda_pending", operation)
            return json.dumps(found).encode()
    if operation == "DescribeLoadBalancers":
        # One piece per load balancer: each starts at its ARN, the first field of its member.
        pieces = data.decode().split("<LoadBalancerArn>")
        for i, piece in enumerate(pieces[1:], 1):
            name = re.search(r"<LoadBalancerName>([^<]+)</LoadBalancerName>", piece)
            if name and "alb_provisioning" in CONFIG and still("balancer", name.group(1), CONFIG["alb_provisioning"]):
                pieces[i] = piece.replace("<Code>active</Code>", "<Code>provisioning</Code>", 1)
                count_fault("shown alb_provisioning", operation)
        return "<LoadBalancerArn>".join(pieces).encode()
    if operation in ("DescribeTable", "UpdateTable") and "dynamodb_replica" in CONFIG:
        found = as_json(data)
        table = found.get("Table") or found.get("TableDescription") or {}
        replicas = with_replicas(table) or member_of(table)
        if replicas:
            table["Replicas"] = replicas
            table["GlobalTableVersion"] = "2019.11.21"
            data = json.dumps(found).encode()
    if operation == "GetHealthCheckStatus" and "route53_health" in CONFIG:
        check = re.search(r"/healthcheck/([^/]+)/status", path)
        if check and still("health check", check.group(1), CONFIG["route53_health"]):
            count_fault("shown route53_health failure", operation)
            return data.replace(b"Success: HTTP Status Code: 200", b"Failure: Connection timed out")
    if operation == "DescribeTable":
        found = as_json(data)
        table = found.get("Table", {})
        if "dynamodb_creating" in CONFIG and still("table", table.get("TableName", ""), CONFIG["dynamodb_creating"]):
            table["TableStatus"] = "CREATING"
            count_fault("shown dynamodb_creating", operation)
            return json.dumps(found).encode()
    if service == "apigateway" and "/v2/domainnames" in path and "apimappings" not in path:
        return with_endpoints(as_json(data))
    if operation == "DescribeCertificate" and "acm_dns_validation" in CONFIG:
        return validated(as_json(data))
    if operation == "DescribeServices":
        found = as_json(data)
        for service_found in found.get("services", []) if "ecs_start" in CONFIG else []:
            if tasks(service_found) != "COMPLETED":
                count_fault("shown ecs_start", operation)
        return json.dumps(ECS.rewrite_services(REGION.get(), found)).encode()
    return data


def with_replicas(table):
    """The home table's replicas as AWS lists them; a replica turning ACTIVE gets its table in its
    region, one deleted loses it."""
    key = (REGION.get(), table.get("TableName", ""))
    with LOCK:
        listed = dict(REPLICAS.get(key, {}))
    for region, state in list(listed.items()):
        if still("replica", f"{key[1]}/{region}", CONFIG["dynamodb_replica"]):
            count_fault(f"shown replica {state}", "DescribeTable")
            continue
        if state == "CREATING":
            replica_table(region, "CreateTable", {
                "TableName": key[1], "KeySchema": table.get("KeySchema", []),
                "AttributeDefinitions": table.get("AttributeDefinitions", []), "BillingMode": "PAY_PER_REQUEST",
                "GlobalSecondaryIndexes": [{"IndexName": i["IndexName"], "KeySchema": i["KeySchema"],
                                            "Projection": i["Projection"]}
                                           for i in table.get("GlobalSecondaryIndexes", [])]})
            listed[region] = "ACTIVE"
        elif state == "DELETING":
            replica_table(region, "DeleteTable", {"TableName": key[1]})
            listed.pop(region)
    with LOCK:
        REPLICAS[key] = listed
    return [{"RegionName": region, "ReplicaStatus": state} for region, state in sorted(listed.items())]


def member_of(table):
    """A replica's own DescribeTable lists the other members of its global table (the home table
    among them) and the global table version, as AWS documents for every member."""
    name, region = table.get("TableName", ""), REGION.get()
    with LOCK:
        for (home, home_name), listed in REPLICAS.items():
            if home_name == name and listed.get(region) == "ACTIVE":
                others = {home: "ACTIVE", **{r: s for r, s in listed.items() if r != region}}
                return [{"RegionName": r, "ReplicaStatus": s} for r, s in sorted(others.items())]
    return []


def replica_table(region, operation, request):
    """What DynamoDB does in the replica's region, sent to the emulator as that region."""
    request = {k: v for k, v in request.items() if v != []}
    conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDB_20120810.{operation}",
               "Authorization": f"AWS4-HMAC-SHA256 Credential=realism/20260101/{region}/dynamodb/aws4_request, "
                                "SignedHeaders=host, Signature=0"}
    conn.request("POST", "/", body=json.dumps(request).encode(), headers=headers)
    conn.getresponse().read()
    conn.close()


def with_endpoints(found):
    """The regional endpoint and its Route 53 zone AWS gives every API Gateway domain name."""
    for domain in found.get("items", [found]):
        for configuration in domain.get("domainNameConfigurations", []):
            region = (configuration.get("certificateArn") or "arn:aws:acm:us-west-1").split(":")[3]
            digest = hashlib.sha256(domain.get("domainName", "").encode()).hexdigest()[:10]
            configuration.setdefault("apiGatewayDomainName", f"d-{digest}.execute-api.{region}.amazonaws.com")
            configuration.setdefault("hostedZoneId", "Z2MUQ32089INYE")
            configuration.setdefault("domainNameStatus", "AVAILABLE")
    return json.dumps(found).encode()


def validated(found):
    """ACM issues a DNS-validated certificate only once its CNAMEs are in the zone, and a while after."""
    certificate = found.get("Certificate", {})
    arn = certificate.get("CertificateArn")
    if arn not in REQUESTED:
        return json.dumps(found).encode()
    options = certificate.get("DomainValidationOptions", [])
    with LOCK:
        present = bool(options) and all(
            RECORDS.get(dns_name(o.get("ResourceRecord", {}).get("Name", "")))
            == dns_name(o.get("ResourceRecord", {}).get("Value", "")) for o in options)
    if not present:
        with LOCK:
            BORN.pop(("certificate", arn), None)
        issued = False
    else:
        if age("certificate", arn) is None:
            mark("certificate", arn)
        issued = not still("certificate", arn, CONFIG["acm_dns_validation"])
    certificate["Status"] = "ISSUED" if issued else "PENDING_VALIDATION"
    for option in options:
        option["ValidationStatus"] = "SUCCESS" if issued else "PENDING_VALIDATION"
    if issued:
        ISSUED.add(arn)
    else:
        count_fault("shown acm_pending_validation", "DescribeCertificate")
    return json.dumps(found).encode()


def tasks(service):
    """ECS starts the tasks after `ecs_start` seconds, or the circuit breaker rolls the deployment back."""
    desired = service.get("desiredCount", 0)
    up = not still("service", service.get("serviceName", ""), CONFIG["ecs_start"])
    failed = CONFIG.get("ecs_health") == "fail"
    running = desired if up and not failed else 0
    state = "IN_PROGRESS" if not up else ("FAILED" if failed else "COMPLETED")
    service["runningCount"], service["pendingCount"] = running, desired - running
    for deployment in service.get("deployments", []):
        if deployment.get("status") == "PRIMARY":
            deployment.update(runningCount=running, pendingCount=desired - running, rolloutState=state,
                              rolloutStateReason="ECS deployment circuit breaker: tasks failed to start."
                              if state == "FAILED" else "")
    return state


for verb in ("POST", "PUT", "DELETE", "PATCH", "HEAD"):
    setattr(Proxy, f"do_{verb}", handle_aws)
Proxy.handle_aws = handle_aws

class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A client that hung up (a killed operator, an attempt timeout) is not the proxy's error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def exit_with_parent():
    """The test process that started the proxy may die without stopping it: follow it."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


if __name__ == "__main__":
    if not CONFIG.get("standalone"):
        threading.Thread(target=exit_with_parent, daemon=True).start()
    server = Server(("127.0.0.1", 0), Proxy)
    server.daemon_threads = True
    with open(sys.argv[3] + ".tmp", "w") as out:
        out.write(str(server.server_address[1]))
    os.replace(sys.argv[3] + ".tmp", sys.argv[3])
    server.serve_forever()
