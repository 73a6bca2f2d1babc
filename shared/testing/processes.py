"""Starting a service process and waiting until its /healthz answers (tests and benchmarks)."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def start_service(
    module: str, port: int, *, log: Path | None = None, seconds: float = 30, **env: str
) -> subprocess.Popen:
    """`python -m module` on loopback with `env` added; returns once http://127.0.0.1:port/healthz
    answers 200, and fails (killing it) if it dies or is not healthy within `seconds`."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=out)
    if log:
        out.close()  # the child holds its own descriptor
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(10)
            where = f"; see {log}" if log else ""
            raise AssertionError(f"{module} never became healthy on port {port}{where}")
        time.sleep(0.1)


def stop_service(proc: subprocess.Popen, seconds: float = 15) -> None:
    proc.terminate()
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@contextmanager
def running_service(module: str, port: int, *, log: Path | None = None, **env: str) -> Iterator[str]:
    """A service process for the duration of a `with` block; yields its base URL."""
    proc = start_service(module, port, log=log, **env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_service(proc)
