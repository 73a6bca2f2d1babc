"""The guarded webhook sender: resolves the host when it connects, refuses non-public addresses,
connects to the vetted address itself (Host header and TLS SNI name the host, so a DNS answer
that changes between the check and the connection cannot redirect it), follows no redirect,
and reads at most 1 KiB of the answer."""

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from services.notifier.targets import TargetRefused, check_url, vet

Resolver = Callable[[str, int], Awaitable[list[str]]]
RESPONSE_CAP = 1024


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (an address literal is itself)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):  # no such host, or a name no DNS could hold ("a..b", 64+ chars)
        return []
    return list(dict.fromkeys(info[4][0] for info in infos))


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: float
    error: str | None = None
    response: str | None = None
    refused: bool = False  # the target itself is not allowed: no retry makes it allowed... until DNS changes

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    def __init__(
        self,
        *,
        timeout_s: float,
        allow_private: bool,
        https_only: bool,
        resolver: Resolver = system_resolver,
        verify: bool | str = True,
    ) -> None:
        self.timeout_s, self.allow_private, self.https_only = timeout_s, allow_private, https_only
        self.resolver, self.verify = resolver, verify
        self._clients: dict[tuple[str, str, int], httpx.AsyncClient] = {}

    def _client(self, scheme: str, host: str, port: int) -> httpx.AsyncClient:
        # One pool per host name: a connection made (and a certificate checked) for one host is
        # never reused for another host that happens to share its address.
        key = (scheme, host, port)
        if key not in self._clients:
            self._clients[key] = httpx.AsyncClient(
                follow_redirects=False,
                verify=self.verify,
                timeout=httpx.Timeout(self.timeout_s),
                limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
                trust_env=False,
            )
        return self._clients[key]

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> AttemptResult:
        """One attempt: POST `body` to `url`; never raises for the target's failures."""
        started = time.perf_counter()
        try:
            host, port = check_url(url, https_only=self.https_only)
            address = vet(await self.resolver(host, port), allow_private=self.allow_private)
        except TargetRefused as exc:
            return AttemptResult(None, _ms(started), f"refused: {exc}", refused=True)
        parts = urlsplit(url)
        netloc_ip = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        target = urlunsplit((parts.scheme, f"{netloc_ip}:{port}", parts.path or "/", parts.query, ""))
        default_port = 443 if parts.scheme == "https" else 80
        host_header = host if port == default_port else f"{host}:{port}"
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        client = self._client(parts.scheme, host, port)
        try:
            async with asyncio.timeout(self.timeout_s):
                request = client.build_request(
                    "POST", target, headers={**headers, "host": host_header}, content=body, extensions=extensions
                )
                response = await client.send(request, stream=True)
                try:
                    answer = await _read_capped(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            return AttemptResult(None, _ms(started), f"timeout after {self.timeout_s:g} s")
        except httpx.TimeoutException:
            return AttemptResult(None, _ms(started), f"timeout after {self.timeout_s:g} s")
        except httpx.HTTPError as exc:
            return AttemptResult(None, _ms(started), f"connection error: {type(exc).__name__}: {exc}"[:500])
        except OSError as exc:
            return AttemptResult(None, _ms(started), f"connection error: {exc}"[:500])
        return AttemptResult(response.status_code, _ms(started), None, answer)

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


async def _read_capped(response: httpx.Response) -> str:
    chunks, size = [], 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= RESPONSE_CAP:
            break
    return b"".join(chunks)[:RESPONSE_CAP].decode("utf-8", "replace")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
