"""The `routemate` command: integrations and drivers through the auth admin API, webhook endpoints
through the notifier's."""

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.auth.settings import LOCAL_ADMIN_TOKEN


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")
    # The auth service's admin listener (AUTH_ADMIN_PORT), never the public one. Unset: derived
    # from AUTH_URL's port + 10, as deploy/local/platform.sh derives AUTH_ADMIN_PORT.
    admin_url: str | None = None
    auth_url: str = "http://127.0.0.1:8081"
    # The notifier's admin listener (NOTIFIER_ADMIN_PORT). Unset: NOTIFIER_URL's port + 10, as
    # deploy/local/platform.sh derives NOTIFIER_ADMIN_PORT.
    notifier_admin_url: str | None = None
    notifier_url: str = "http://127.0.0.1:8087"
    # Where members open the console (the edge's base URL): set-up links are built on it.
    routemate_base_url: str = "https://127.0.0.1:8443"
    admin_token: SecretStr = SecretStr(LOCAL_ADMIN_TOKEN)

    @property
    def admin_base(self) -> str:
        return _admin_listener(self.admin_url, self.auth_url, 8081)

    @property
    def notifier_admin_base(self) -> str:
        return _admin_listener(self.notifier_admin_url, self.notifier_url, 8087)


def _admin_listener(given: str | None, public_url: str, default_port: int) -> str:
    """The admin listener's URL: as given, or the public listener's port + 10."""
    if given:
        return given.rstrip("/")
    import httpx  # here: `routemate optimize` never calls an API, and httpx costs a quarter second to import

    url = httpx.URL(public_url)
    return str(url.copy_with(port=(url.port or default_port) + 10)).rstrip("/")


app = typer.Typer(help="Operate a RouteMate platform.", no_args_is_help=True)
integration = typer.Typer(help="Integrations (OAuth2 clients) of organizations.", no_args_is_help=True)
driver = typer.Typer(help="The driver directory of an organization.", no_args_is_help=True)
app.add_typer(integration, name="integration")
app.add_typer(driver, name="driver")
status = typer.Typer(help="The status service's read model.", no_args_is_help=True)
app.add_typer(status, name="status")
webhook = typer.Typer(help="Webhook endpoints of organizations.", no_args_is_help=True)
app.add_typer(webhook, name="webhook")
user = typer.Typer(help="Console members of organizations.", no_args_is_help=True)
app.add_typer(user, name="user")
org = typer.Typer(
    help="Organizations: how long their jobs are kept, and erasing them (offboarding).", no_args_is_help=True
)
app.add_typer(org, name="org")


def _call(method: str, path: str, *, base: str | None = None, **kwargs: Any) -> Any:
    import httpx  # here: `routemate optimize` never calls an API, and httpx costs a quarter second to import

    settings = CliSettings()
    base = base or settings.admin_base  # auth's admin listener unless another admin API is named
    headers = {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}
    try:
        answer = httpx.request(method, base.rstrip("/") + path, headers=headers, timeout=20, **kwargs)
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach {base}: {exc}", err=True)
        raise typer.Exit(2) from None
    if answer.status_code == 204:
        return {}
    body = answer.json() if answer.headers.get("content-type", "").endswith("json") else {"detail": answer.text}
    if answer.status_code >= 400:
        typer.echo(f"error: {answer.status_code} {body.get('detail') or body}", err=True)
        for err in body.get("errors", []):
            typer.echo(f"  {err.get('pointer')}: {err.get('reason')}", err=True)
        raise typer.Exit(1)
    return body


def _print(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


Org = Annotated[str, typer.Option("--org", help="organization name (created on first use)")]


@integration.command("create")
def integration_create(org: Org, name: Annotated[str | None, typer.Option(help="a label")] = None) -> None:
    """Create an integration; prints client_id and client_secret (shown this once)."""
    _print(_call("POST", "/admin/v1/integrations", json={"org": org, "name": name}))


@integration.command("rotate")
def integration_rotate(
    client_id: str,
    grace_seconds: Annotated[
        int, typer.Option(help="how long the old secret keeps working (0: stops at once, live tokens revoked)")
    ] = 0,
) -> None:
    """Issue a new secret for an integration."""
    _print(_call("POST", f"/admin/v1/integrations/{client_id}/rotate", json={"grace_seconds": grace_seconds}))


@integration.command("revoke")
def integration_revoke(client_id: str) -> None:
    """Revoke an integration; its live tokens stop working at once."""
    _print(_call("POST", f"/admin/v1/integrations/{client_id}/revoke"))


@integration.command("list")
def integration_list(org: Annotated[str | None, typer.Option("--org")] = None) -> None:
    """List integrations (never their secrets)."""
    _print(_call("GET", "/admin/v1/integrations", params={"org": org} if org else None))


@driver.command("add")
def driver_add(
    org: Org, email: Annotated[str, typer.Option("--email")], name: Annotated[str | None, typer.Option("--name")] = None
) -> None:
    """Register (or update) a driver by email."""
    _print(_call("POST", "/admin/v1/drivers", json={"org": org, "email": email, "name": name}))


@driver.command("remove")
def driver_remove(org: Org, email: Annotated[str, typer.Option("--email")]) -> None:
    """Remove a driver from the directory."""
    _print(_call("DELETE", "/admin/v1/drivers", params={"org": org, "email": email}))


@driver.command("list")
def driver_list(org: Org) -> None:
    """List an organization's drivers."""
    _print(_call("GET", "/admin/v1/drivers", params={"org": org}))


@user.command("add")
def user_add(
    org: Org,
    email: Annotated[str, typer.Option("--email")],
    role: Annotated[str, typer.Option("--role", help="admin, developer or viewer")] = "admin",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Add a console member; prints a one-time set-up link (72 h), or sets the password from stdin."""
    body: dict[str, Any] = {"org": org, "email": email, "role": role}
    if password_stdin:
        body["password"] = sys.stdin.readline().rstrip("\n")
    added = _call("POST", "/admin/v1/members", json=body)
    if added.get("setup_token"):
        base = CliSettings().routemate_base_url.rstrip("/")
        added["setup_link"] = f"{base}/setup?token={added.pop('setup_token')}"
    _print(added)


@user.command("set-password")
def user_set_password(email: Annotated[str, typer.Option("--email")]) -> None:
    """Set a member's password, read from stdin (the set-up link, if any, stops working)."""
    _print(
        _call(
            "POST", "/admin/v1/members/password", json={"email": email, "password": sys.stdin.readline().rstrip("\n")}
        )
    )


def _org_id(org: str) -> str:
    """The id of an organization by name (from its integrations at the auth service)."""
    found = _call("GET", "/admin/v1/integrations", params={"org": org})["integrations"]
    if not found:
        typer.echo(f"error: no organization {org!r} (create an integration for it first)", err=True)
        raise typer.Exit(1)
    return found[0]["org_id"]


def _notifier(method: str, path: str, **kwargs: Any) -> Any:
    return _call(method, "/admin/v1/webhooks" + path, base=CliSettings().notifier_admin_base, **kwargs)


@webhook.command("list")
def webhook_list(org: Org) -> None:
    """The organization's webhook endpoints."""
    _print(_notifier("GET", "", params={"org_id": _org_id(org)}))


@webhook.command("create")
def webhook_create(
    org: Org,
    url: Annotated[str, typer.Option("--url")],
    events: Annotated[list[str], typer.Option("--event", help="an event type; repeat for several")],
    description: Annotated[str | None, typer.Option("--description")] = None,
) -> None:
    """Register an endpoint; prints its signing secret (shown only now)."""
    body = {"org_id": _org_id(org), "url": url, "events": events, "description": description}
    _print(_notifier("POST", "", json=body))


@webhook.command("delete")
def webhook_delete(org: Org, endpoint_id: str) -> None:
    """Delete an endpoint and its delivery log."""
    _notifier("DELETE", f"/{endpoint_id}", params={"org_id": _org_id(org)})
    _print({"deleted": endpoint_id})


@org.command("retention")
def org_retention(
    name: Annotated[str, typer.Argument(help="organization name")],
    days: Annotated[float | None, typer.Argument(help="days a finished job is kept; omit to keep for ever")] = None,
) -> None:
    """Set how long the organization's finished jobs are kept; the status service erases older ones."""
    _print(_call("PUT", f"/admin/v1/orgs/{name}/retention", json={"job_retention_days": days}))


@org.command("erase")
def org_erase(
    name: Annotated[str, typer.Argument(help="organization name")],
    yes: Annotated[bool, typer.Option("--yes", help="confirm: this cannot be undone")] = False,
) -> None:
    """Erase everything of an organization: its jobs (as DELETE does), integrations, tokens, drivers,
    webhook endpoints and their deliveries, and its driver directory in the event log."""
    if not yes:
        typer.echo(f"error: erasing {name!r} cannot be undone; repeat with --yes", err=True)
        raise typer.Exit(2)
    org_id = _org_id(name)
    endpoints = _notifier("GET", "", params={"org_id": org_id}).get("endpoints", [])
    for endpoint in endpoints:
        _notifier("DELETE", f"/{endpoint['id']}", params={"org_id": org_id})
    done = _call("POST", f"/admin/v1/orgs/{name}/erase")
    _print({**done, "webhook_endpoints": len(endpoints)})


@status.command("rebuild")
def status_rebuild(
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="an EMPTY database to rebuild into (SQLite or PostgreSQL URL)"),
    ] = None,
    from_scratch: Annotated[
        bool, typer.Option("--from-scratch", help="replay every event instead of starting from the newest snapshot")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="read, decode and open every event without writing (what the log holds; no database)"
        ),
    ] = False,
) -> None:
    """Restore the newest snapshot into an empty read model and replay the topics from its offsets
    (or, --from-scratch, every event from the start); then point the service at it."""
    import asyncio
    import resource

    from routemate_cli.progress import Progress
    from services.status.rebuild import NotEmpty, rebuild
    from services.status.settings import StatusSettings

    if (database_url is None) != dry_run:
        typer.echo("error: give --database-url to rebuild into, or --dry-run (not both)", err=True)
        raise typer.Exit(2)
    progress = Progress("events", sys.stderr)  # stderr: stdout stays the JSON report
    try:
        report = asyncio.run(rebuild(StatusSettings(), database_url, from_snapshot=not from_scratch, progress=progress))
    except NotEmpty as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    progress.finish()
    _print(
        {
            "database_url": database_url,
            "dry_run": dry_run,
            "snapshot": report.snapshot,
            "rows_restored": report.restored,
            "events_applied": report.events,
            "undecodable_skipped": report.skipped,
            "jobs": report.jobs,
            "replay_seconds": round(report.seconds, 3),
            "events_per_second": round(report.events / report.seconds) if report.seconds else None,
            "phases": {name: round(seconds, 3) for name, seconds in report.phases.items()},
            "versions_aligned": report.versions_aligned,
            "gaps": report.gaps,
            # The process's peak resident memory (Linux reports KiB): bounded by the reader's
            # fetches and the batches in hand, not by the log's length.
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    )


@status.command("snapshot")
def status_snapshot() -> None:
    """Write a snapshot of the live read model and the offsets it reflects (the rebuild starts there)."""
    import asyncio

    from services.status.rebuild import take_snapshot
    from services.status.settings import StatusSettings

    taken = asyncio.run(take_snapshot(StatusSettings()))
    offsets = [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(taken.offsets.items())]
    _print({"path": str(taken.path), "taken_at": taken.taken_at, "rows": taken.rows, "offsets": offsets})


@app.command("optimize")
def optimize_file(
    path: Annotated[str, typer.Argument(help="a job in the import format (JSON), or - for stdin")],
) -> None:
    """Solve one job locally, without Kafka: prints the import response shape plus a `solver` object."""
    from routemate_cli.optimize import run
    from shared.errors import Problem

    try:
        raw = json.loads(sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        typer.echo(f"error: cannot read {path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        typer.echo(f"error: {path} is not JSON: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        _print(run(raw))
    except Problem as problem:
        typer.echo(f"error: {problem.code}: {problem.detail}", err=True)
        for err in problem.errors or []:
            typer.echo(f"  {err.get('pointer')}: {err.get('reason')}", err=True)
        raise typer.Exit(1) from None


if __name__ == "__main__":
    app()
