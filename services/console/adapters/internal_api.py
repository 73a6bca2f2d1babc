"""An internal endpoint of another service (auth's admin listener, status), with INTERNAL_TOKEN."""

import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)


class ApiRefused(Exception):
    """The service answered 4xx: its status, problem code and detail (safe to show)."""

    def __init__(self, status: int, code: str, detail: str, retry_after: str | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail, self.retry_after = status, code, detail, retry_after


class ApiUnavailable(Exception):
    """The service could not be reached or failed (5xx)."""


class InternalApi:
    def __init__(self, base_url: str, token: str, client: httpx.AsyncClient | None = None) -> None:
        self.client = client or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=10)
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, *, json: Any = None, params: Any = None) -> Any:
        try:
            answer = await self.client.request(method, path, json=json, params=params, headers=self.headers)
        except httpx.HTTPError as exc:
            log.warning("internal call %s %s failed: %s", method, path.split("/")[3:4], type(exc).__name__)
            raise ApiUnavailable from None
        if answer.status_code >= 500:
            raise ApiUnavailable
        body = answer.json() if answer.headers.get("content-type", "").endswith("json") else {}
        if answer.status_code >= 400:
            raise ApiRefused(
                answer.status_code,
                str(body.get("code", "refused")),
                str(body.get("detail", "")),
                answer.headers.get("retry-after"),
            )
        return body

    async def aclose(self) -> None:
        await self.client.aclose()
