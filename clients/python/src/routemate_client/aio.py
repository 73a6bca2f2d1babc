"""The asyncio client: the same methods as `Client`, awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, Literal, overload

import httpx

from routemate_client import _core
from routemate_client.errors import JobWaitTimeout, NotFoundError, error_from
from routemate_client.models import ImportAccepted, ImportJob, Job, JobPage, StopOutcome, StopStatusAccepted


class AsyncClient:
    """RouteMate over HTTP: one cached token, safe retries, typed answers.

    >>> async with AsyncClient("http://127.0.0.1:8080", "rm_ci_…", "rm_cs_…") as rm:
    ...     job = await rm.import_job({...})
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 120.0,
        refresh_margin: float = 60.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = _core.Settings(
            base_url,
            client_id,
            client_secret,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_retry_after=max_retry_after,
            refresh_margin=refresh_margin,
        )
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._tokens = _core.TokenCache(self.settings)
        self._token_lock = asyncio.Lock()

    # --- the API ----------------------------------------------------------------------------

    @overload
    async def import_job(
        self,
        job: ImportJob | dict[str, Any],
        *,
        wait: Literal[True] = True,
        wait_timeout: float = ...,
        poll_interval: float = ...,
    ) -> Job: ...

    @overload
    async def import_job(
        self,
        job: ImportJob | dict[str, Any],
        *,
        wait: Literal[False],
        wait_timeout: float = ...,
        poll_interval: float = ...,
    ) -> ImportAccepted: ...

    async def import_job(
        self,
        job: ImportJob | dict[str, Any],
        *,
        wait: bool = True,
        wait_timeout: float = 120.0,
        poll_interval: float = 1.0,
    ) -> Job | ImportAccepted:
        """Import a job. With `wait` (default) returns the routed `Job`, following a 202's `Location`
        until it settles; without, returns `ImportAccepted` at once (`Prefer: respond-async`).
        Retrying is safe: the platform is idempotent on `external_job_id`."""
        headers = {} if wait else {"Prefer": "respond-async"}
        answer = await self._send("POST", _core.IMPORT_PATH, json=_core.dump(job), headers=headers)
        if answer.status_code in (200, 201):
            return Job.model_validate(answer.json()) if wait else _core.accepted_from(answer.json())
        if answer.status_code != 202:
            raise error_from(answer)
        accepted = ImportAccepted.model_validate(answer.json())
        if not wait:
            return accepted
        return await self._wait_until_settled(
            answer.headers.get("location") or accepted.links.job, wait_timeout, poll_interval
        )

    async def get_job(self, job_id: str) -> Job:
        """One job with its stops in route order; `NotFoundError` if this organization has none."""
        return Job.model_validate(await self._json("GET", f"{_core.JOBS_PATH}/{job_id}"))

    async def find_job(self, external_job_id: str) -> Job | None:
        """The job imported under your own id, or None."""
        try:
            found = await self._json("GET", _core.JOBS_PATH, params={"external_job_id": external_job_id})
        except NotFoundError:
            return None
        return Job.model_validate(found)

    async def iter_jobs(
        self,
        *,
        status: str | None = None,
        updated_since: datetime | None = None,
        driver_email: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Job]:
        """Every matching job, newest first, fetching page after page as you iterate."""
        cursor = None
        while True:
            params = _core.list_params(status, updated_since, driver_email, page_size, cursor)
            page = JobPage.model_validate(await self._json("GET", _core.JOBS_PATH, params=params))
            for job in page.jobs:
                yield job
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def update_stop_status(
        self,
        job_id: str,
        external_stop_id: str,
        status: StopOutcome,
        *,
        occurred_at: datetime | None = None,
        reason: str | None = None,
        notes: str | None = None,
        recipient_name: str | None = None,
        signature_url: str | None = None,
        photo_urls: list[str] | None = None,
    ) -> StopStatusAccepted:
        """Record a stop's delivery outcome (`completed`, `failed`, `skipped`) with proof of delivery."""
        body = _core.stop_status_body(
            status,
            occurred_at,
            reason=reason,
            notes=notes,
            recipient_name=recipient_name,
            signature_url=signature_url,
            photo_urls=photo_urls,
        )
        path = f"{_core.JOBS_PATH}/{job_id}/stops/{external_stop_id}/status"
        return StopStatusAccepted.model_validate(await self._json("POST", path, json=body))

    async def update_job(
        self,
        job: ImportJob | dict[str, Any],
        *,
        if_match: str | int,
        wait_timeout: float = 120.0,
        poll_interval: float = 1.0,
    ) -> Job:
        """The job's next version: the changed body under the same `external_job_id`, sent with
        `If-Match` of the ETag (or `version`) you read. Returns the job on its new route.
        `PreconditionFailed` (412) when the job changed since: its `current_etag` is the one to use."""
        tag = _core.etag(if_match)
        answer = await self._send("POST", _core.IMPORT_PATH, json=_core.dump(job), headers={"If-Match": tag})
        if answer.status_code in (200, 201):
            return Job.model_validate(answer.json())
        if answer.status_code != 202:
            raise error_from(answer)
        location = answer.headers.get("location") or ImportAccepted.model_validate(answer.json()).links.job
        base = _core.version_of(tag)
        return await self._wait_until_settled(location, wait_timeout, poll_interval, lambda j: _core.replanned(j, base))

    async def cancel_job(self, job_id: str, *, reason: str | None = None, if_match: str | int | None = None) -> Job:
        """Cancel a job (terminal): its pending stops become `cancelled`. Cancelling again is safe.
        Returns the job as it reads once the cancellation is applied."""
        headers = {"If-Match": _core.etag(if_match)} if if_match is not None else {}
        path = f"{_core.JOBS_PATH}/{job_id}"
        await self._json("POST", f"{path}/cancel", json=_core.webhook_body(reason=reason), headers=headers)
        return await self._wait_until_settled(path, 60.0, 0.5, lambda j: j.status == "cancelled")

    async def delete_job(self, job_id: str) -> None:
        """Erase a job and its personal data (addresses, names, notes, proof of delivery) everywhere;
        erasing again is safe. An unknown job, or another organization's, raises NotFoundError."""
        answer = await self._send("DELETE", f"{_core.JOBS_PATH}/{job_id}")
        if answer.status_code >= 300:
            raise error_from(answer)

    async def reoptimize_job(
        self,
        job_id: str,
        *,
        current_location: tuple[float, float] | None = None,
        at: datetime | None = None,
        if_match: str | int | None = None,
        wait_timeout: float = 120.0,
        poll_interval: float = 1.0,
    ) -> Job:
        """Re-plan the stops still to visit from `current_location` (lat, lng) at `at`; finished
        stops keep their place. Returns the job on its new route."""
        body: dict[str, Any] = {}
        if current_location is not None:
            body["current_location"] = {"lat": current_location[0], "lng": current_location[1]}
        if at is not None:
            body["at"] = at.isoformat()
        headers = {"If-Match": _core.etag(if_match)} if if_match is not None else {}
        path = f"{_core.JOBS_PATH}/{job_id}"
        before = await self._send("GET", path)
        base = _core.version_of(before.headers.get("etag", "0")) if before.status_code == 200 else 0
        await self._json("POST", f"{path}/reoptimize", json=body, headers=headers)
        return await self._wait_until_settled(path, wait_timeout, poll_interval, lambda j: _core.replanned(j, base))

    # --- webhook endpoints --------------------------------------------------------------------

    async def create_webhook(self, url: str, events: list[str], *, description: str | None = None) -> dict[str, Any]:
        """A new endpoint; the answer's `secret` (whsec_…) is shown this once: keep it to verify deliveries."""
        body = _core.webhook_body(url=url, events=events, description=description)
        return await self._json("POST", _core.WEBHOOKS_PATH, json=body)

    async def list_webhooks(self) -> list[dict[str, Any]]:
        return (await self._json("GET", _core.WEBHOOKS_PATH))["endpoints"]

    async def get_webhook(self, endpoint_id: str) -> dict[str, Any]:
        return await self._json("GET", f"{_core.WEBHOOKS_PATH}/{endpoint_id}")

    async def update_webhook(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: list[str] | None = None,
        description: str | None = None,
        status: Literal["active", "disabled"] | None = None,
    ) -> dict[str, Any]:
        body = _core.webhook_body(url=url, events=events, description=description, status=status)
        return await self._json("PATCH", f"{_core.WEBHOOKS_PATH}/{endpoint_id}", json=body)

    async def delete_webhook(self, endpoint_id: str) -> None:
        answer = await self._send("DELETE", f"{_core.WEBHOOKS_PATH}/{endpoint_id}")
        if answer.status_code >= 300:
            raise error_from(answer)

    async def rotate_webhook_secret(self, endpoint_id: str, *, grace_seconds: int | None = None) -> dict[str, Any]:
        """A new secret, shown once; during the grace both the old and the new one sign."""
        body = _core.webhook_body(grace_seconds=grace_seconds)
        return await self._json("POST", f"{_core.WEBHOOKS_PATH}/{endpoint_id}/rotate-secret", json=body)

    async def test_webhook(self, endpoint_id: str) -> dict[str, Any]:
        """Send a `webhook.test` event to the endpoint now."""
        return await self._json("POST", f"{_core.WEBHOOKS_PATH}/{endpoint_id}/test")

    async def webhook_deliveries(self, endpoint_id: str, *, cursor: str | None = None) -> dict[str, Any]:
        """One page of the endpoint's delivery log (`deliveries`, `next_cursor`)."""
        params = {"cursor": cursor} if cursor else None
        return await self._json("GET", f"{_core.WEBHOOKS_PATH}/{endpoint_id}/deliveries", params=params)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- plumbing ---------------------------------------------------------------------------

    async def _wait_until_settled(
        self, location: str, wait_timeout: float, poll_interval: float, done: Callable[[Job], bool] | None = None
    ) -> Job:
        deadline = time.monotonic() + wait_timeout
        while True:
            try:
                job: Job | None = Job.model_validate(await self._json("GET", location))
            except NotFoundError:  # accepted, but not on the jobs endpoint yet: keep waiting
                job = None
            if job is not None and (done(job) if done else job.settled):
                return job
            if time.monotonic() >= deadline:
                state = job.status if job else "not visible yet"
                raise JobWaitTimeout(f"{location} is still {state}", code="wait_timeout", status=202)
            await asyncio.sleep(poll_interval)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = await self._send(method, path, **kwargs)
        if answer.status_code >= 300:
            raise error_from(answer)
        return answer.json()

    async def _token(self) -> str:
        async with self._token_lock:  # concurrent callers wait for one refresh and share its token
            token = self._tokens.fresh()
            if token is None:
                body = self._tokens.request_body()
                token = self._tokens.store(await self._send("POST", _core.TOKEN_PATH, json=body, authenticated=False))
            return token

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
    ) -> httpx.Response:
        """One call, retried on connection errors, 429 and 503 (Retry-After honoured) and once
        with a fresh token on a 401. Returns the final answer, whatever its status."""
        url = self.settings.base_url + path if path.startswith("/") else path
        refreshed, attempt = False, 0
        while True:
            token = await self._token() if authenticated else None
            sent = {**self.settings.headers, **(headers or {})}
            if token:
                sent["Authorization"] = f"Bearer {token}"
            try:
                answer = await self._http.request(method, url, json=json, params=params, headers=sent)
            except httpx.TransportError as exc:
                delay = _core.retry_delay(self.settings, attempt, None)
                if delay is None:
                    raise _core.give_up_connecting(method, path, exc) from exc
                _core.log_retry(method, path, type(exc).__name__, delay, attempt, self.settings)
                await asyncio.sleep(delay)
                attempt += 1
                continue
            if answer.status_code == 401 and authenticated and not refreshed:
                self._tokens.forget(token)
                refreshed = True
                continue
            if answer.status_code in _core.RETRY_STATUSES:
                delay = _core.retry_delay(self.settings, attempt, answer)
                if delay is not None:
                    _core.log_retry(method, path, str(answer.status_code), delay, attempt, self.settings)
                    await asyncio.sleep(delay)
                    attempt += 1
                    continue
            return answer
