"""Transport security over the real edge: TLS with the local CA verified, the security headers, no
redirect to a client-supplied Host, and plain http redirected to https when the setting is on."""

import os
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import certifi
import httpx
import pytest

from shared.testing.stack import EDGE, EDGE_TLS, EDGE_TLS_PORT, TLS_CA, VAR, service_url
from shared.testing.waiting import wait_until
from tests.conftest import ROOT, Tenant

HSTS = "max-age=31536000"


def trusting_the_local_ca() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(TLS_CA))


@pytest.fixture
async def https(platform):
    async with httpx.AsyncClient(base_url=EDGE_TLS, verify=trusting_the_local_ca(), timeout=60) as client:
        yield client


def assert_personal(answer: httpx.Response, *, tls: bool) -> None:
    """A personal-data answer: never stored by a cache, never sniffed; HSTS exactly when over TLS."""
    assert answer.headers.get_list("cache-control") == ["no-store"], answer.headers
    assert answer.headers.get_list("x-content-type-options") == ["nosniff"], answer.headers
    assert answer.headers.get("strict-transport-security") == (HSTS if tls else None), answer.headers


async def test_token_import_job_and_stop_update_over_https_with_the_local_ca_verified(https):
    tenant = await Tenant(https).login()  # the token answer
    token = await https.post(
        "/v1/integration-token",
        json={"client_id": tenant.creds["client_id"], "client_secret": tenant.creds["client_secret"]},
    )
    assert token.status_code == 200 and token.url.scheme == "https"
    assert token.extensions["http_version"] in (b"HTTP/1.1", b"HTTP/2")
    imported = await tenant.import_job()
    assert imported.status_code == 201, imported.text
    job = imported.json()
    read = await tenant.get_job(job["job_id"])
    listed = await https.get("/v1/integration-jobs", headers=tenant.auth)
    stop = job["stops"][0]["external_stop_id"]
    update = await https.post(
        f"/v1/integration-jobs/{job['job_id']}/stops/{stop}/status",
        json={"status": "completed", "recipient_name": "Sam"},
        headers=tenant.auth,
    )
    assert read.status_code == listed.status_code == 200 and update.status_code == 202, update.text
    assert read.json()["job_id"] == job["job_id"] and job["job_id"] in {j["job_id"] for j in listed.json()["jobs"]}
    for answer in (token, imported, read, listed, update):
        assert_personal(answer, tls=True)


async def test_a_client_that_does_not_trust_the_ca_is_refused_the_connection(platform):
    public_cas_only = ssl.create_default_context(cafile=certifi.where())  # not the system store: it may trust ours
    async with httpx.AsyncClient(base_url=EDGE_TLS, verify=public_cas_only) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get("/healthz")


async def test_hsts_is_sent_over_https_only_and_nosniff_on_every_answer(https, http):
    for path in ("/healthz", "/docs", "/v1/openapi.json", "/v1/nope", "/v1/integration-jobs"):
        secure, plain = await https.get(path), await http.get(path)
        assert secure.status_code == plain.status_code != 308, path  # plain http stays usable locally
        assert secure.headers["strict-transport-security"] == HSTS, path
        assert "strict-transport-security" not in plain.headers, path
        for answer in (secure, plain):
            assert answer.headers.get_list("x-content-type-options") == ["nosniff"], path
    assert_personal(await http.get("/v1/integration-jobs"), tls=False)
    assert "cache-control" not in (await https.get("/v1/openapi.json")).headers  # the contract may be cached
    preflight = await https.options(
        "/v1/integration-token", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204 and preflight.headers["strict-transport-security"] == HSTS
    assert preflight.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "where, path",
    [
        ("https edge", "/v1/integration-jobs/"),
        ("http edge", "/v1/integration-jobs/"),
        ("status", "/v1/integration-jobs/"),
        ("auth", "/v1/integration-token/"),
        ("ingest", "/v1/integration-import/"),
    ],
)
async def test_a_trailing_slash_with_a_hostile_host_is_not_redirected_to_that_host(platform, where, path):
    """Before: 307 to http://evil.example/v1/... from Starlette's slash redirect, through the edge too."""
    base = {"https edge": EDGE_TLS, "http edge": EDGE}.get(where) or service_url(where)
    async with httpx.AsyncClient(base_url=base, verify=trusting_the_local_ca()) as client:
        answer = await client.get(path, headers={"Host": "evil.example"})
        docs = await client.get("/docs/", headers={"Host": "evil.example"})
    assert answer.status_code == 404 and "location" not in answer.headers, answer.headers
    assert answer.headers["content-type"] == "application/problem+json" and answer.json()["code"] == "not_found"
    assert answer.headers["cache-control"] == "no-store" and answer.headers["x-content-type-options"] == "nosniff"
    if where.endswith("edge"):  # the edge's own redirect is relative
        assert docs.status_code == 301 and docs.headers["location"] == "/docs"


def handshake(**options) -> str:
    """A raw TLS handshake with the edge; returns the negotiated version."""
    context = trusting_the_local_ca()
    for name, value in options.items():
        if name == "ciphers":
            context.set_ciphers(value)
        else:
            setattr(context, name, value)
    with (
        socket.create_connection(("127.0.0.1", EDGE_TLS_PORT), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.version() or ""


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_only_tls_12_and_13_with_forward_secret_aead_ciphers(platform):
    assert handshake() == "TLSv1.3"
    strong = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305"
    assert handshake(maximum_version=ssl.TLSVersion.TLSv1_2, ciphers=strong) == "TLSv1.2"
    for weak in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA256"):  # CBC
        with pytest.raises(ssl.SSLError):
            handshake(maximum_version=ssl.TLSVersion.TLSv1_2, ciphers=weak)
    with pytest.raises(ssl.SSLError):
        handshake(
            minimum_version=ssl.TLSVersion.TLSv1_1, maximum_version=ssl.TLSVersion.TLSv1_1, ciphers="ALL:@SECLEVEL=0"
        )
    alpn = trusting_the_local_ca()
    alpn.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", EDGE_TLS_PORT), timeout=5) as raw,
        alpn.wrap_socket(raw, server_hostname="localhost") as tls,  # the certificate names localhost too
    ):
        assert tls.selected_alpn_protocol() == "h2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redirecting_edge(platform, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A second edge rendered from the same template with EDGE_HTTP_REDIRECT=1, on spare ports, in
    front of the platform's services and with the platform's certificate."""
    plain, secure = free_port(), free_port()
    env = {
        **os.environ,
        "VAR_DIR": str(tmp_path),
        "EDGE_PORT": str(plain),
        "EDGE_TLS_PORT": str(secure),
        "EDGE_HTTP_REDIRECT": "1",
        "EDGE_TLS_CERT": str(VAR / "tls/server.crt"),
        "EDGE_TLS_KEY": str(VAR / "tls/server.key"),
    }
    subprocess.run(["bash", str(ROOT / "deploy/local/platform.sh"), "edge-config"], env=env, check=True, cwd=ROOT)
    conf = tmp_path / "nginx"
    nginx = subprocess.Popen(
        ["/usr/sbin/nginx", "-p", str(conf), "-c", str(conf / "nginx.conf"), "-e", "stderr", "-g", "daemon off;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    def answers() -> bool:
        assert nginx.poll() is None, nginx.stderr.read().decode()
        try:
            return httpx.get(f"http://127.0.0.1:{plain}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, 10, what="the redirecting edge")
        yield f"http://127.0.0.1:{plain}", f"https://127.0.0.1:{secure}"
    finally:
        nginx.terminate()
        nginx.wait(10)


def raw_request(base: str, request: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(request)
        return s.recv(4096)


def test_with_redirect_on_plain_http_gets_308_to_https_at_the_configured_name(redirecting_edge):
    plain, secure = redirecting_edge
    path = "/v1/integration-jobs?job_id=job_1&status=assigned"
    with httpx.Client(base_url=plain) as client:
        get = client.get(path, headers={"Host": "evil.example"})
        post = client.post("/v1/integration-token", json={}, headers={"Host": "evil.example:8443"})
        health = client.get("/healthz")
    assert get.status_code == post.status_code == 308
    assert get.headers["location"] == secure + path
    assert post.headers["location"] == secure + "/v1/integration-token"
    assert "strict-transport-security" not in get.headers and get.headers["x-content-type-options"] == "nosniff"
    assert health.status_code == 200  # probes stay on plain http
    # An absolute-form request target or a path that looks like an authority changes nothing.
    absolute = raw_request(plain, b"GET http://evil.example/v1/integration-jobs HTTP/1.1\r\nHost: evil.example\r\n\r\n")
    assert f"\r\nLocation: {secure}/v1/integration-jobs\r\n".encode() in absolute, absolute
    authority = raw_request(plain, b"GET //evil.example/x HTTP/1.1\r\nHost: evil.example\r\n\r\n")
    assert f"\r\nLocation: {secure}//evil.example/x\r\n".encode() in authority, authority
    # Followed, the redirect reaches the real services over verified TLS.
    with httpx.Client(verify=trusting_the_local_ca(), follow_redirects=True) as client:
        followed = client.get(plain + path)
    assert followed.url == httpx.URL(secure + path) and followed.status_code == 401
    assert followed.json()["code"] == "missing_token" and followed.headers["strict-transport-security"] == HSTS
