"""Deployment files validated offline: Prometheus rules and config (promtool), Kubernetes manifests
(kubernetes-validate), the compose file (compose-spec schema), the Grafana dashboard."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.geocoder.subscribers import GROUP as GEOCODER_GROUP
from services.optimizer.settings import OptimizerSettings
from services.optimizer.subscribers import GROUP as OPTIMIZER_GROUP
from shared.events import JOBS_GEOCODED, JOBS_GEOCODED_BULK, JOBS_REQUESTED, JOBS_REQUESTED_BULK
from shared.lanes import bulk_group
from shared.settings import PlatformSettings
from shared.testing.stack import SERVICE_PORTS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def run(*args: str) -> str:
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_prometheus_rules_and_configs_are_valid_and_the_alerts_fire_when_they_should():
    assert "SUCCESS" in run("promtool", "check", "rules", str(DEPLOY / "prometheus/routemate-rules.yml"))
    assert "SUCCESS" in run("promtool", "check", "config", str(DEPLOY / "prometheus/prometheus.yml"))
    assert "SUCCESS" in run("promtool", "check", "config", "--syntax-only", str(DEPLOY / "compose/prometheus.yml"))
    assert "SUCCESS" in run("promtool", "test", "rules", str(DEPLOY / "prometheus/rules-test.yml"))


def test_every_alert_has_a_runbook_note():
    rules = yaml.safe_load((DEPLOY / "prometheus/routemate-rules.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} >= {
        "RouteMateConsumerLagGrowing",
        "RouteMateEndToEndLatencyHigh",
        "RouteMateHttpErrors",
        "RouteMateDeadLetters",
        "RouteMateGeocoderProviderDown",
        "RouteMateTokenLockoutsSpiking",
    }
    assert all(a["annotations"].get("runbook") for a in alerts)


def manifests() -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s/routemate.yaml").read_text()) if d]


@pytest.mark.parametrize(
    "doc",
    [d for d in manifests() if d["apiVersion"] != "keda.sh/v1alpha1"],
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)
def test_kubernetes_manifests_match_the_api_schema(doc):
    kubernetes_validate.validate(doc, "1.33", strict=True)


def test_every_service_is_probed_sized_protected_and_scraped():
    docs = manifests()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {"auth", "ingest", "status", "geocoder", "optimizer", "notifier", "console"}
    pdbs = {d["metadata"]["name"] for d in docs if d["kind"] == "PodDisruptionBudget"}
    assert pdbs == set(deployments)
    for name, d in deployments.items():
        container = d["spec"]["template"]["spec"]["containers"][0]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"] == "/healthz", name
        assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
        assert d["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


KEDA_SCHEMA = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers", "maxReplicaCount"],
            "properties": {
                "scaleTargetRef": {"type": "object", "required": ["name"]},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1, "maximum": 12},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"const": "kafka"},
                            "metadata": {
                                "type": "object",
                                "required": ["bootstrapServers", "consumerGroup", "topic", "lagThreshold"],
                            },
                        },
                    },
                },
            },
        }
    },
}


def test_keda_scales_the_consumer_stages_on_both_lanes_lag():
    scaled = {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "ScaledObject"}
    assert set(scaled) == {"optimizer", "geocoder"}
    for name, group, topic, bulk_topic in (
        ("optimizer", OPTIMIZER_GROUP, JOBS_GEOCODED, JOBS_GEOCODED_BULK),
        ("geocoder", GEOCODER_GROUP, JOBS_REQUESTED, JOBS_REQUESTED_BULK),
    ):
        jsonschema.validate(scaled[name], KEDA_SCHEMA)
        assert scaled[name]["spec"]["scaleTargetRef"]["name"] == name
        triggers = [(t["metadata"]["consumerGroup"], t["metadata"]["topic"]) for t in scaled[name]["spec"]["triggers"]]
        assert triggers == [(group, topic), (bulk_group(group), bulk_topic)]


def test_the_ingress_serves_tls_only_with_hsts_from_the_controller():
    ingress = next(d for d in manifests() if d["kind"] == "Ingress")
    tls = ingress["spec"]["tls"]
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    assert tls and tls[0]["secretName"] and hosts <= set(tls[0]["hosts"])
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    controller = yaml.safe_load((DEPLOY / "k8s/ingress-nginx-controller.yaml").read_text())
    kubernetes_validate.validate(controller, "1.33", strict=True)
    assert controller["data"]["hsts"] == "true" and controller["data"]["hsts-max-age"] == "31536000"
    assert controller["data"]["ssl-protocols"] == "TLSv1.2 TLSv1.3"
    assert controller["data"]["http-redirect-code"] == "308"


def test_the_compose_file_matches_the_compose_spec():
    run(
        sys.executable,
        "-m",
        "check_jsonschema",
        "--builtin-schema",
        "vendor.compose-spec",
        str(DEPLOY / "compose/docker-compose.yml"),
    )
    compose = yaml.safe_load((DEPLOY / "compose/docker-compose.yml").read_text())
    for target in ("auth", "ingest", "status", "geocoder", "optimizer", "notifier", "console"):
        assert compose["services"][target]["build"]["target"] == target
        assert f"FROM base AS {target}" in (DEPLOY / "compose/Dockerfile").read_text()
    edge = compose["services"]["edge"]
    assert "8443:8443" in edge["ports"]
    mounted = {volume.split(":")[-2] for volume in edge["volumes"]}
    assert {"/etc/nginx/tls/server.crt", "/etc/nginx/tls/server.key", "/etc/nginx/tls.conf"} <= mounted
    for volume in edge["volumes"]:  # every shared piece the compose edge includes is mounted
        source = volume.split(":")[0]
        if not source.startswith("$"):
            assert (DEPLOY / "compose" / source).is_file(), source


DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["uid", "title", "panels", "schemaVersion"],
    "properties": {
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "title", "gridPos", "targets"],
                "properties": {
                    "targets": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "object", "required": ["refId", "expr"]},
                    }
                },
            },
        }
    },
}


def test_the_dashboard_loads():
    jsonschema.validate(json.loads((DEPLOY / "grafana/routemate-pipeline.json").read_text()), DASHBOARD_SCHEMA)


def exported_families() -> set[str]:
    """Every metric family the running services export, scraped from their /metrics."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    names: set[str] = set()
    for service, port in SERVICE_PORTS.items():
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert answer.status_code == 200, service
        names |= {family.name for family in text_string_to_metric_families(answer.text)}
    return names


def test_the_dashboard_and_the_alerts_only_use_series_the_running_services_export(platform):
    """Scraped, not grepped: a series defined in code but never registered or exported fails here."""
    exported = exported_families()
    rules_text = (DEPLOY / "prometheus/routemate-rules.yml").read_text()
    recorded = {r["record"] for g in yaml.safe_load(rules_text)["groups"] for r in g["rules"] if "record" in r}
    dashboard = json.loads((DEPLOY / "grafana/routemate-pipeline.json").read_text())
    exprs = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]
    exprs += [
        (r.get("alert") or r["record"], r["expr"]) for g in yaml.safe_load(rules_text)["groups"] for r in g["rules"]
    ]
    for where, expr in exprs:
        for metric in re.findall(r"(routemate[:_][a-z_:0-9]+)", expr):
            family = re.sub(r"_(bucket|sum|count|total|created)$", "", metric)
            assert metric in recorded or family in exported, f"{where}: {metric} is exported by no running service"


BEARER = {"Authorization": "Bearer not-checked-by-the-edge"}


def test_the_compose_edge_runs_in_real_nginx_over_tls_and_answers_problem_json(tmp_path):
    """The compose nginx.conf, with its service names pointed at closed local ports, its listeners on
    spare ports and a certificate from deploy/local/tls.sh, started for real: https answers (the
    certificate verified) with the security headers, plain http only redirects to the configured name."""
    import shutil
    import socket
    import ssl
    import time

    import httpx

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    plain, secure = free_port(), free_port()
    run("bash", str(DEPLOY / "local/tls.sh"), str(tmp_path / "tls"))
    for shared in (DEPLOY / "nginx").glob("*.conf"):
        shutil.copy(shared, tmp_path)
    conf = (DEPLOY / "compose/nginx.conf").read_text()
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{plain};")
    conf = conf.replace("listen 8443 ssl;", f"listen 127.0.0.1:{secure} ssl;")
    conf = re.sub(
        r"http://(auth|ingest|status|notifier|console):\d+", "http://127.0.0.1:9", conf
    )  # discard port: refused
    conf = conf.replace("/etc/nginx/tls/", f"{tmp_path / 'tls'}/")
    temp = " ".join(
        f"{kind}_temp_path {tmp_path / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = conf.replace("http {", "http {\n    access_log off; " + temp, 1)
    (tmp_path / "nginx.conf").write_text(conf)
    nginx = subprocess.Popen(
        [
            "/usr/sbin/nginx",
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
            "-e",
            "stderr",
            "-g",
            f"daemon off; pid {tmp_path / 'nginx.pid'}; error_log {tmp_path / 'error.log'};",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    trust = ssl.create_default_context(cafile=str(tmp_path / "tls/ca.crt"))
    try:
        base = f"https://127.0.0.1:{secure}"
        # Generous waits: the suite shares 2 cores with whatever else runs (it failed once in a
        # loaded full run and passed alone).
        with httpx.Client(base_url=base, verify=trust, timeout=30) as client:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            else:
                raise AssertionError(
                    nginx.stderr.read1().decode() if nginx.poll() is not None else "nginx did not answer"
                )
            missing = client.get("/v1/nope")
            down = client.get("/v1/integration-jobs")
            too_big = client.post("/v1/integration-import", content=b"x" * (7 * 1024 * 1024))
        for answer, status, code in (
            (missing, 404, "not_found"),
            (down, 503, "service_unavailable"),
            (too_big, 413, "body_too_large"),
        ):
            assert answer.status_code == status and answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == code
            assert answer.headers["strict-transport-security"] == "max-age=31536000"
            assert answer.headers["x-content-type-options"] == "nosniff"
        assert down.headers["retry-after"] == "5" and down.headers["cache-control"] == "no-store"
        with httpx.Client(base_url=f"http://127.0.0.1:{plain}", timeout=30) as client:
            redirected = client.get("/v1/integration-jobs?job_id=job_1", headers={"Host": "evil.example"})
            health = client.get("/healthz")
        assert redirected.status_code == 308
        assert redirected.headers["location"] == "https://localhost:8443/v1/integration-jobs?job_id=job_1"
        assert "strict-transport-security" not in redirected.headers
        assert redirected.headers["x-content-type-options"] == "nosniff"
        assert health.status_code == 200
        # Without credentials, one address gets its burst to the services and then 429 problem+json; with an
        # Authorization header the address is not limited (the services limit per integration).
        with httpx.Client(base_url=base, verify=trust) as client:
            anonymous = [client.get("/v1/integration-jobs").status_code for _ in range(300)]
            limited = client.get("/v1/integration-jobs")
            signed = [client.get("/v1/integration-jobs", headers=BEARER).status_code for _ in range(150)]
        assert anonymous.count(503) >= 100 and 429 in anonymous
        assert limited.status_code == 429 and limited.headers["content-type"] == "application/problem+json"
        assert limited.json()["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
        assert set(signed) == {503}
    finally:
        nginx.terminate()
        nginx.wait(10)


# Which secret each service may see: the admin token and the pepper only auth; the token
# signing key the services that mint or check tokens; a Redis/Kafka user of its own for each.
SECRETS_OF = {
    "auth": {
        "ADMIN_TOKEN",
        "SECRET_PEPPER",
        "TOKEN_SIGNING_KEY",
        "INTERNAL_TOKEN",
        "REDIS_URL",
        "KAFKA_SASL_PASSWORD",
        "DATABASE_URL",
        "DATA_KEY_ENCRYPTION_KEY",
    },  # fmt: skip
    "ingest": {"TOKEN_SIGNING_KEY", "REDIS_URL", "KAFKA_SASL_PASSWORD", "DATA_KEY_ENCRYPTION_KEY"},
    "status": {
        "TOKEN_SIGNING_KEY",
        "INTERNAL_TOKEN",
        "REDIS_URL",
        "KAFKA_SASL_PASSWORD",
        "DATABASE_URL",
        "DATA_KEY_ENCRYPTION_KEY",
    },  # fmt: skip
    "geocoder": {"REDIS_URL", "CACHE_REDIS_URL", "KAFKA_SASL_PASSWORD", "DATA_KEY_ENCRYPTION_KEY"},
    "optimizer": {"KAFKA_SASL_PASSWORD"},
}
SECRET_NAMES = {
    "DATA_KEY_ENCRYPTION_KEY",
    "ADMIN_TOKEN",
    "SECRET_PEPPER",
    "TOKEN_SIGNING_KEY",
    "INTERNAL_TOKEN",
    "REDIS_URL",
    "CACHE_REDIS_URL",
    "KAFKA_SASL_PASSWORD",
    "DATABASE_URL",
}


def test_compose_gives_each_service_only_its_own_secrets_and_users():
    compose = yaml.safe_load((DEPLOY / "compose/docker-compose.yml").read_text())
    for name, wanted in SECRETS_OF.items():
        env = compose["services"][name]["environment"]
        assert set(env) & SECRET_NAMES == wanted, name
        assert env["ENVIRONMENT"] == "production" and env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert env["KAFKA_SASL_USERNAME"] == name and f"KAFKA_{name.upper()}_PASSWORD" in env["KAFKA_SASL_PASSWORD"]
        if "REDIS_URL" in wanted:
            assert env["REDIS_URL"].startswith(f"redis://{name}:${{REDIS_{name.upper()}_PASSWORD")
    auth = compose["services"]["auth"]
    assert auth["ports"] == ["127.0.0.1:8091:8091"]  # admin on the host's loopback only; public via the edge
    assert compose["services"]["notifier"]["ports"] == ["127.0.0.1:8097:8097"]  # the same for the notifier's
    edge_ip = compose["services"]["edge"]["networks"]["default"]["ipv4_address"]
    assert json.loads(auth["environment"]["TRUSTED_PROXIES"]) == [edge_ip]
    assert "--aclfile" in " ".join(compose["services"]["redis"]["entrypoint"])
    console = compose["services"]["console"]["environment"]  # no Kafka, no database: sessions and the internal token
    assert set(console) & SECRET_NAMES == {"REDIS_URL", "INTERNAL_TOKEN"}
    assert console["REDIS_URL"].startswith("redis://console:${REDIS_CONSOLE_PASSWORD")
    postgres = compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert postgres.startswith("${POSTGRES_PASSWORD:?"), "a published database password"
    for service in compose["services"].values():
        url = (service.get("environment") or {}).get("DATABASE_URL", "")
        assert not url or ":${POSTGRES_PASSWORD}@" in url, url


def test_kubernetes_gives_each_service_only_its_own_secrets_and_keeps_admin_off_the_ingress():
    docs = manifests()
    text = (DEPLOY / "k8s/routemate.yaml").read_text()
    assert not [d for d in docs if d["kind"] == "Secret"] and "replace-me" not in text
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for name, wanted in SECRETS_OF.items():
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        from_secret = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
        refs = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
        assert refs == [f"routemate-{name}"], name  # its own Secret: REDIS_URL, KAFKA_SASL_PASSWORD, DATABASE_URL
        assert from_secret == wanted & {
            "ADMIN_TOKEN",
            "SECRET_PEPPER",
            "TOKEN_SIGNING_KEY",
            "INTERNAL_TOKEN",
            "DATA_KEY_ENCRYPTION_KEY",
        }, name
        assert {"name": "KAFKA_SASL_USERNAME", "value": name} in container["env"]
    ingress = next(d for d in docs if d["kind"] == "Ingress")
    backends = [
        (p["backend"]["service"]["name"], p["backend"]["service"]["port"])
        for r in ingress["spec"]["rules"]
        for p in r["http"]["paths"]
    ]
    assert ("auth", {"name": "http"}) in backends and not [b for b in backends if b[0] == "auth-admin"]
    console = deployments["console"]["spec"]["template"]
    assert console["metadata"]["labels"]["routemate.io/admin-client"] == "true"  # reaches the admin listeners
    assert ("console", {"name": "http"}) in backends
    assert not [b for b in backends if b[0] == "notifier-admin"]
    for service, port in (("auth", 8091), ("notifier", 8097)):
        admin = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == f"{service}-admin")
        assert admin["spec"]["ports"] == [{"name": "admin", "port": port, "targetPort": "admin"}]
        policy = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == service)
        admin_rule = next(r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == port)
        assert admin_rule["from"] == [{"podSelector": {"matchLabels": {"routemate.io/admin-client": "true"}}}]
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT" and "REDIS_URL" not in config


def redis_options(args: list[str]) -> dict[str, str]:
    """`--maxmemory 1gb --maxmemory-policy noeviction ...` as {"maxmemory": "1gb", ...}."""
    return {flag.removeprefix("--"): value for flag, value in zip(args[1::2], args[2::2], strict=False)}


def redis_command(service: dict) -> list[str]:
    """The redis-server command line of a compose service, from `command` or its `sh -c` entrypoint."""
    if "command" in service:
        return service["command"]
    script = service["entrypoint"][-1]
    return shlex.split(script[script.index("redis-server") :])


def as_bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([a-zA-Z]*)", size).groups()
    return int(number) * {"": 1, "mb": 2**20, "gb": 2**30, "Mi": 2**20, "Gi": 2**30}[unit]


def test_the_durable_redis_never_evicts_and_only_the_cache_redis_does():
    """Compose and Kubernetes run two Redis instances: tokens and buckets where writes are refused
    when full (noeviction), the geocode cache where the least recently used keys go (allkeys-lru);
    both have a maxmemory, and the geocoder (only) is pointed at the cache."""
    compose = yaml.safe_load((DEPLOY / "compose/docker-compose.yml").read_text())["services"]
    statefulsets = {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "StatefulSet"}
    config = next(d for d in manifests() if d["kind"] == "ConfigMap")["data"]
    for name, policy in (("redis", "noeviction"), ("redis-cache", "allkeys-lru")):
        in_compose = redis_options(redis_command(compose[name]))
        container = statefulsets[name]["spec"]["template"]["spec"]["containers"][0]
        in_k8s = redis_options(["redis-server", *container["args"]])
        for options in (in_compose, in_k8s):
            assert options["maxmemory-policy"] == policy, name
            assert as_bytes(options["maxmemory"]) > 0, name
        # Redis needs room past maxmemory (buffers, fragmentation) before the kernel kills it.
        assert as_bytes(container["resources"]["limits"]["memory"]) >= 1.25 * as_bytes(in_k8s["maxmemory"])
    assert redis_options(redis_command(compose["redis"]))["appendonly"] == "yes"
    cache_url = compose["geocoder"]["environment"]["CACHE_REDIS_URL"]
    assert cache_url.startswith("redis://geocoder:") and cache_url.endswith("@redis-cache:6379/0")
    assert all("CACHE_REDIS_URL" not in compose[s]["environment"] for s in ("auth", "ingest", "status", "optimizer"))
    assert compose["auth"]["environment"]["REDIS_URL"].endswith("@redis:6379/0")
    # Kubernetes: the URLs carry ACL passwords, so they live in each service's own Secret.
    assert "REDIS_URL" not in config and "CACHE_REDIS_URL" not in config
    for name in ("redis", "redis-cache"):
        args = statefulsets[name]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--aclfile" in args, name


def test_kubernetes_and_compose_say_the_documented_kafka_layout():
    """README "Operating and scaling": 12 partitions per topic everywhere; Kubernetes runs three
    brokers with replication 3 and min ISR 2; compose one broker with replication 1. No stage is
    scaled past its partitions (an extra consumer would sit idle)."""
    config = next(d for d in manifests() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "routemate-config")
    k8s = config["data"]
    assert (k8s["TOPIC_PARTITIONS"], k8s["TOPIC_REPLICATION"], k8s["TOPIC_MIN_INSYNC_REPLICAS"]) == ("12", "3", "2")
    PlatformSettings(**{k.lower(): v for k, v in k8s.items() if k.startswith("TOPIC_")})  # a valid combination
    in_hand = int(k8s.get("SOLVER_IN_HAND", OptimizerSettings().solver_in_hand))
    for scaled in (d for d in manifests() if d["kind"] == "ScaledObject"):
        consumers = in_hand if scaled["spec"]["scaleTargetRef"]["name"] == "optimizer" else 1  # per process
        assert scaled["spec"]["maxReplicaCount"] * consumers <= int(k8s["TOPIC_PARTITIONS"])
    compose = yaml.safe_load((DEPLOY / "compose/docker-compose.yml").read_text())
    env = compose["x-env"]
    assert (env["TOPIC_PARTITIONS"], env["TOPIC_REPLICATION"], env["TOPIC_MIN_INSYNC_REPLICAS"]) == ("12", "1", "1")
    assert [name for name in compose["services"] if name.startswith("kafka")] == ["kafka"]  # so replication 1
    assert "offsets.topic.replication.factor=1" in (DEPLOY / "compose/kafka-sasl.sh").read_text()
