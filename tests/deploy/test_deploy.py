"""Deployment files validated offline: Prometheus rules and config (promtool), Kubernetes manifests
(kubernetes-validate), the compose file (compose-spec schema), the Grafana dashboard."""

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.geocoder.subscribers import GROUP as GEOCODER_GROUP
from services.optimizer.subscribers import GROUP as OPTIMIZER_GROUP
from shared.events import JOBS_GEOCODED, JOBS_REQUESTED
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
    assert set(deployments) == {"auth", "ingest", "status", "geocoder", "optimizer"}
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


def test_keda_scales_the_consumer_stages_on_their_own_groups_lag():
    scaled = {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "ScaledObject"}
    assert set(scaled) == {"optimizer", "geocoder"}
    for name, group, topic in (
        ("optimizer", OPTIMIZER_GROUP, JOBS_GEOCODED),
        ("geocoder", GEOCODER_GROUP, JOBS_REQUESTED),
    ):
        jsonschema.validate(scaled[name], KEDA_SCHEMA)
        trigger = scaled[name]["spec"]["triggers"][0]["metadata"]
        assert (scaled[name]["spec"]["scaleTargetRef"]["name"], trigger["consumerGroup"], trigger["topic"]) == (
            name,
            group,
            topic,
        )


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
    for target in ("auth", "ingest", "status", "geocoder", "optimizer"):
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
    conf = re.sub(r"http://(auth|ingest|status):\d+", "http://127.0.0.1:9", conf)  # discard port: refused
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
            f"daemon off; pid {tmp_path / 'nginx.pid'}; error_log stderr;",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    trust = ssl.create_default_context(cafile=str(tmp_path / "tls/ca.crt"))
    try:
        base = f"https://127.0.0.1:{secure}"
        with httpx.Client(base_url=base, verify=trust) as client:
            for _ in range(40):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
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
        with httpx.Client(base_url=f"http://127.0.0.1:{plain}") as client:
            redirected = client.get("/v1/integration-jobs?job_id=job_1", headers={"Host": "evil.example"})
            health = client.get("/healthz")
        assert redirected.status_code == 308
        assert redirected.headers["location"] == "https://localhost:8443/v1/integration-jobs?job_id=job_1"
        assert "strict-transport-security" not in redirected.headers
        assert redirected.headers["x-content-type-options"] == "nosniff"
        assert health.status_code == 200
    finally:
        nginx.terminate()
        nginx.wait(10)
