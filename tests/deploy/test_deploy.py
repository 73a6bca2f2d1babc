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
    assert set(deployments) == {"auth", "ingest", "status", "geocoder", "optimizer", "notifier"}
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
    for target in ("auth", "ingest", "status", "geocoder", "optimizer", "notifier"):
        assert compose["services"][target]["build"]["target"] == target
        assert f"FROM base AS {target}" in (DEPLOY / "compose/Dockerfile").read_text()


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


def test_the_compose_edge_runs_in_real_nginx_and_answers_problem_json(tmp_path):
    """The compose nginx.conf, with its service names pointed at closed local ports, started for real."""
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = (DEPLOY / "compose/nginx.conf").read_text()
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    conf = re.sub(r"http://(auth|ingest|status|notifier):\d+", "http://127.0.0.1:9", conf)  # discard port: refused
    conf = conf.replace("/etc/nginx/problem-pages.conf", str(DEPLOY / "nginx/problem-pages.conf"))
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
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(40):
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError(nginx.stderr.read1().decode() if nginx.poll() is not None else "nginx did not answer")
        missing = httpx.get(base + "/v1/nope")
        down = httpx.get(base + "/v1/integration-jobs")
        too_big = httpx.post(base + "/v1/integration-import", content=b"x" * (7 * 1024 * 1024))
        for answer, status, code in (
            (missing, 404, "not_found"),
            (down, 503, "service_unavailable"),
            (too_big, 413, "body_too_large"),
        ):
            assert answer.status_code == status and answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == code
        assert down.headers["retry-after"] == "5"
    finally:
        nginx.terminate()
        nginx.wait(10)
