"""The burst benchmark's reference: a bare FastAPI endpoint on the same server stack as ingest."""

import os
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.service import serve
from shared.settings import PlatformSettings

app = FastAPI()


@app.post("/v1/integration-import")
async def accept(request: Request) -> JSONResponse:
    body: Any = await request.json()
    return JSONResponse({"job_id": "job_x", "external_job_id": body.get("external_job_id")}, status_code=202)


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


if __name__ == "__main__":
    # The platform's settings from the environment, as the ingest replica it is compared with reads them.
    serve(app, "bare", PlatformSettings(), int(os.environ.get("BARE_PORT", "18090")))
