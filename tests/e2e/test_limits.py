"""Limits where there were none, over the real stack: token mints per client, job reads and stop
updates per integration, requests without credentials per address at the edge, and the byte
size of one list page."""

import asyncio
import uuid

import httpx

from shared.testing.stack import EDGE
from shared.testing.waiting import async_wait_until
from tests.conftest import EXAMPLE, Tenant


def client_from(address: str, **kwargs) -> httpx.AsyncClient:
    """A client whose requests come from another loopback address, so the edge's per-address
    limits this test runs into are not those of every other test (they come from 127.0.0.1)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=EDGE, transport=transport, timeout=60, **kwargs)


async def mint(http: httpx.AsyncClient, creds: dict) -> httpx.Response:
    return await http.post(
        "/v1/integration-token", json={"client_id": creds["client_id"], "client_secret": creds["client_secret"]}
    )


async def test_minting_tokens_in_a_loop_is_slowed_down_per_client_and_wrong_secrets_spend_nothing(
    http: httpx.AsyncClient, tenant: Tenant
):
    minted = [await mint(http, tenant.creds) for _ in range(12)]  # the login took one of the burst of 10
    codes = [m.status_code for m in minted]
    assert codes[:9] == [200] * 9 and codes[-1] == 429, codes
    refused = minted[-1]
    assert refused.json()["error"] == "slow_down" and refused.json()["error_description"]
    assert int(refused.headers["Retry-After"]) >= 1 and refused.headers["Cache-Control"] == "no-store"
    # The tokens already minted keep working, and another integration is not affected.
    assert (await tenant.get_job(str(uuid.uuid4()))).status_code == 404
    other = Tenant(http)
    assert (await mint(http, other.creds)).status_code == 200
    # Someone who knows only the client_id spends none of its budget: wrong secrets are
    # refused as wrong (and count towards the lockout), never as over the mint rate.
    for _ in range(3):
        wrong = await http.post(
            "/v1/integration-token", json={"client_id": other.creds["client_id"], "client_secret": "guess"}
        )
        assert wrong.status_code == 401
    assert [(await mint(http, other.creds)).status_code for _ in range(8)] == [200] * 8


async def burst(calls) -> list[httpx.Response]:
    return list(await asyncio.gather(*calls))


async def test_job_reads_and_stop_updates_have_their_own_buckets_per_integration(http: httpx.AsyncClient, tenant):
    job = f"/v1/integration-jobs/{uuid.uuid4()}"
    listed = await http.get("/v1/integration-jobs", headers=tenant.auth)
    assert listed.status_code == 200 and listed.headers["RateLimit-Limit"] == "100"
    assert listed.headers["RateLimit-Remaining"] == "99"
    reads = await burst(http.get(job, headers=tenant.auth) for _ in range(300))
    statuses = {r.status_code for r in reads}
    assert statuses == {404, 429}, statuses
    limited = next(r for r in reads if r.status_code == 429)
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["code"] == "rate_limited" and "job reads" in limited.json()["detail"]
    assert int(limited.headers["Retry-After"]) >= 1 and limited.headers["RateLimit-Remaining"] == "0"
    # Reads spent, updates are still admitted, and another integration reads as usual.
    update = await http.post(f"{job}/stops/S1/status", headers=tenant.auth, json={"status": "completed"})
    assert update.status_code == 404
    other = await Tenant(http).login()
    assert (await http.get(job, headers=other.auth)).status_code == 404
    updates = await burst(
        http.post(f"{job}/stops/S1/status", headers=tenant.auth, json={"status": "completed"}) for _ in range(300)
    )
    assert {u.status_code for u in updates} == {404, 429}
    assert next(u for u in updates if u.status_code == 429).json()["code"] == "rate_limited"
    # The buckets refill: the integration is served again once its Retry-After has passed.
    await async_wait_until(
        lambda: tenant.get_job(str(uuid.uuid4())), seconds=10, every=0.5, what="a read to be admitted again"
    )


async def test_requests_without_credentials_are_limited_per_address_at_the_edge(tenant: Tenant):
    async with client_from("127.0.0.2") as anonymous, client_from("127.0.0.3") as neighbour:
        answers = await burst(anonymous.get("/v1/integration-jobs") for _ in range(250))
        codes = [a.status_code for a in answers]
        assert codes.count(401) >= 100 and 429 in codes, sorted(set(codes))
        limited = next(a for a in answers if a.status_code == 429)
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.json()["code"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
        # The same address with a token is not limited by address; another address is not limited at all.
        assert (await anonymous.get("/v1/integration-jobs", headers=tenant.auth)).status_code == 200
        assert (await neighbour.get("/v1/integration-jobs")).status_code == 401
        # The token endpoint has its own zone: it is not spent by the burst above, and has one of its own.
        assert (await mint(anonymous, tenant.creds)).status_code in (200, 429)  # 429 would be the mint rate
        token_answers = await burst(anonymous.post("/v1/integration-token", data={}) for _ in range(400))
        token_codes = {a.status_code for a in token_answers}
        assert token_codes == {400, 429}, token_codes
        edge_limited = next(a for a in token_answers if a.status_code == 429)
        assert edge_limited.json()["code"] == "rate_limited"


async def reported(tenant: Tenant, job: dict, stop_id: str, proof: dict) -> None:
    """One stop reported with the largest proof of delivery the API takes, honouring Retry-After."""
    url = f"/v1/integration-jobs/{job['job_id']}/stops/{stop_id}/status"
    while True:
        answer = await tenant.http.post(url, headers=tenant.auth, json=proof)
        if answer.status_code != 429:
            assert answer.status_code == 202, answer.text
            return
        await asyncio.sleep(int(answer.headers["Retry-After"]))


async def test_a_list_page_is_bounded_by_bytes_and_a_cursor_walk_sees_every_job_once(tenant: Tenant):
    stops = [
        {**stop, "external_stop_id": f"S{i}-{stop['external_stop_id']}"} for i in range(5) for stop in EXAMPLE["stops"]
    ]
    jobs = [(await tenant.import_job(tenant.job(stops=stops))).json() for _ in range(5)]
    assert all(j["status"] == "assigned" for j in jobs), [j["status"] for j in jobs]
    url = "https://example.com/" + "p" * 1970
    proof = {
        "status": "completed",
        "notes": "n" * 2000,
        "recipient_name": "r" * 200,
        "signature_url": url,
        "photo_urls": [f"{url}{i:02}" for i in range(20)],
    }
    gate = asyncio.Semaphore(8)

    async def report(job: dict, stop: dict) -> None:
        async with gate:
            await reported(tenant, job, stop["external_stop_id"], proof)

    await asyncio.gather(*(report(job, stop) for job in jobs for stop in job["stops"]))

    for job in jobs:
        await async_wait_until(
            lambda job=job: _completed(tenant, job["job_id"]), seconds=60, what=f"job {job['job_id']} completed"
        )
    seen, sizes, cursor = [], [], None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = await tenant.http.get("/v1/integration-jobs", params=params, headers=tenant.auth)
        assert page.status_code == 200, page.text
        sizes.append(len(page.content))
        seen.append([j["job_id"] for j in page.json()["jobs"]])
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    print(f"list pages: {[len(ids) for ids in seen]} jobs, {sizes} bytes")
    flat = [job_id for ids in seen for job_id in ids]
    assert flat == [j["job_id"] for j in reversed(jobs)], "every job exactly once, newest first"
    assert len(seen) >= 2 and all(ids for ids in seen), seen
    assert max(sizes) <= 4 * 1024 * 1024 + 4096, sizes  # MAX_PAGE_BYTES plus the page's envelope


async def _completed(tenant: Tenant, job_id: str) -> bool:
    answer = await tenant.get_job(job_id)
    return answer.status_code == 200 and answer.json()["status"] == "completed"
