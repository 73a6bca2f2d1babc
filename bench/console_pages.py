"""The console's page weights (bytes per page, assets included, cache off) and the time to first
render of /jobs for an organization holding N jobs, in Debian's headless Chromium through the edge.

    python -m bench.console_pages --jobs 1000
"""

import argparse
import asyncio
import statistics
import subprocess
import sys
import uuid
from urllib.parse import urlsplit

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bench.common import EDGE, ROOT, machine
from shared.testing.waiting import async_wait_until

PASSWORD = "bench console password"
PAGES = ["/login", "/jobs", "/jobs/{job_id}", "/drivers", "/settings/integrations", "/members", "/activity"]


def cli(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "routemate_cli.main", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


async def fill(org: str, n: int) -> str:
    """n jobs of 5 placed stops in `org`, imported asynchronously; returns the last job's id once all settled."""
    import json

    creds = json.loads(cli("integration", "create", "--org", org, "--name", "bench"))
    async with httpx.AsyncClient(base_url=EDGE, timeout=60) as api:
        token = (await api.post("/v1/integration-token", json=creds)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}", "Prefer": "respond-async"}
        stops = [{"external_stop_id": f"S{i}", "lat": -27.47 + i / 100, "lng": 153.02 + i / 90} for i in range(5)]
        ids: list[str] = []
        gate = asyncio.Semaphore(8)

        async def post(i: int) -> None:
            body = {"external_job_id": f"BENCH-{uuid.uuid4().hex[:10]}-{i}", "title": f"bench {i}", "stops": stops}
            async with gate:
                for _ in range(20):
                    answer = await api.post("/v1/integration-import", json=body, headers=auth)
                    if answer.status_code in (201, 202):
                        ids.append(answer.json()["job_id"])
                        return
                    await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))

        await asyncio.gather(*(post(i) for i in range(n)))
        last = ids[-1]

        async def settled() -> bool:
            found = await api.get(f"/v1/integration-jobs/{last}", headers={"Authorization": f"Bearer {token}"})
            return found.status_code == 200 and found.json()["status"] not in ("pending", "processing")

        await async_wait_until(settled, seconds=600, what="the last bench job to settle")
    return last


def browser() -> webdriver.Chrome:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                     f"--explicitly-allowed-ports={urlsplit(EDGE).port or 80}"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    return driver


WEIGHT = """
const nav = performance.getEntriesByType('navigation')[0];
const assets = performance.getEntriesByType('resource');
const paint = performance.getEntriesByType('paint').find(p => p.name === 'first-contentful-paint');
return {html: nav.transferSize, assets: assets.reduce((s, r) => s + r.transferSize, 0), count: assets.length,
        fcp: paint ? paint.startTime : null, server: nav.responseStart - nav.requestStart};
"""


def measure(driver: webdriver.Chrome, path: str) -> dict:
    driver.get(EDGE + path)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    WebDriverWait(driver, 10).until(lambda d: d.execute_script(WEIGHT)["fcp"] is not None)
    return driver.execute_script(WEIGHT)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    org = f"bench-console-{uuid.uuid4().hex[:6]}"
    email = f"admin@{org}.example"
    cli("user", "add", "--org", org, "--email", email, "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    job_id = asyncio.run(fill(org, args.jobs))
    driver = browser()
    try:
        driver.get(EDGE + "/login")
        driver.find_element(By.ID, "email").send_keys(email)
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(driver, 30).until(lambda d: d.current_url.endswith("/jobs"))
        print(f"# console pages, {machine()}; org with {args.jobs} jobs; cache off")
        print("| page | HTML bytes | assets (count, bytes) | total bytes | first contentful paint |")
        print("|---|---|---|---|---|")
        for path in PAGES:
            m = measure(driver, path.format(job_id=job_id))
            total = m["html"] + m["assets"]
            print(f"| {path} | {m['html']:,} | {m['count']}, {m['assets']:,} | {total:,} | {m['fcp']:.0f} ms |")
        runs = [measure(driver, "/jobs") for _ in range(7)]
        fcp = statistics.median(r["fcp"] for r in runs)
        server = statistics.median(r["server"] for r in runs)
        print(f"\n/jobs with {args.jobs} jobs in the organization: first contentful paint median {fcp:.0f} ms "
              f"(max {max(r['fcp'] for r in runs):.0f}), server answer median {server:.0f} ms, 7 loads")  # fmt: skip
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
