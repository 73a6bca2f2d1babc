"""The console's pages: sign-in and set-up, integrations, drivers, jobs, members, activity.

Each page reads or changes through auth's or status's internal endpoints, scoped to the signed-in
member's organization; nothing here keeps business data.
"""

import ipaddress
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console import handlers
from services.console.adapters.internal_api import ApiRefused
from services.console.adapters.sessions import Session
from services.console.deps import (
    COOKIE,
    AuthApi,
    CheckedForm,
    ManagesDrivers,
    ManagesIntegrations,
    ManagesMembers,
    MemberDep,
    NotifierApi,
    ReadsActivity,
    SessionsDep,
    SettingsDep,
    StatusApi,
    VisitorDep,
)
from services.console.metrics import SIGN_INS

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def _trusted(request: Request) -> bool:
    peer = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(p) for p in request.app.state.settings.trusted_proxies)


def over_tls(request: Request) -> bool:
    """Whether the browser talks https: the edge says so in X-Forwarded-Proto."""
    if _trusted(request) and request.headers.get("x-forwarded-proto"):
        return request.headers["x-forwarded-proto"] == "https"
    return request.url.scheme == "https"


def browser_address(request: Request) -> str:
    if _trusted(request) and request.headers.get("x-real-ip"):
        return request.headers["x-real-ip"]
    return request.client.host if request.client else "unknown"


def page(request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=code)


def with_cookie(request: Request, response: Response, session_id: str | None) -> Response:
    if session_id is None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=over_tls(request))
    else:
        response.set_cookie(COOKIE, session_id, path="/", httponly=True, samesite="lax", secure=over_tls(request))
    return response


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


async def _anonymous(visitor, sessions) -> tuple[str, Session]:
    """The visitor's session, or a new anonymous one (it carries the sign-in form's CSRF token)."""
    if visitor.session is not None and visitor.session_id is not None:
        return visitor.session_id, visitor.session
    session = Session()
    return await sessions.start(session), session


# ---- sign-in, sign-out, set-up link ----


@router.get("/")
async def home() -> RedirectResponse:
    return see_other("/jobs")


@router.get("/login")
async def login_form(request: Request, visitor: VisitorDep, sessions: SessionsDep) -> Response:
    session_id, session = await _anonymous(visitor, sessions)
    notice = "Your password is set: sign in." if request.query_params.get("setup") == "done" else None
    return with_cookie(request, page(request, "login.html", session=session, notice=notice), session_id)


@router.post("/login")
async def login(request: Request, form: CheckedForm, visitor: VisitorDep, sessions: SessionsDep, auth: AuthApi):
    email, password = str(form.get("email") or "")[:320], str(form.get("password") or "")[:256]
    assert visitor.session is not None
    try:
        found = await auth.call(
            "POST", "/internal/v1/sign-in", json={"email": email, "password": password or "-",
                                                  "address": browser_address(request)}
        )  # fmt: skip
    except ApiRefused as refused:
        SIGN_INS.labels("locked_out" if refused.status == 429 else "rejected").inc()
        error = "Too many failed sign-ins; try again later." if refused.status == 429 else "Wrong email or password."
        return page(request, "login.html", 429 if refused.status == 429 else 401,
                    session=visitor.session, error=error, email=email)  # fmt: skip
    SIGN_INS.labels("signed_in").inc()
    # A new session id at sign-in: whatever id the browser had before (perhaps planted) is dead.
    await sessions.end(visitor.session_id)
    member = Session(member_id=found["member_id"], org_id=found["org_id"], email=found["email"], role=found["role"])
    return with_cookie(request, see_other("/jobs"), await sessions.start(member))


@router.post("/logout")
async def logout(request: Request, _: CheckedForm, visitor: VisitorDep, sessions: SessionsDep) -> Response:
    await sessions.end(visitor.session_id)
    return with_cookie(request, see_other("/login"), None)


@router.get("/setup")
async def setup_form(request: Request, visitor: VisitorDep, sessions: SessionsDep) -> Response:
    session_id, session = await _anonymous(visitor, sessions)
    token = request.query_params.get("token", "")[:200]
    return with_cookie(request, page(request, "setup.html", session=session, token=token), session_id)


@router.post("/setup")
async def setup(request: Request, form: CheckedForm, visitor: VisitorDep, auth: AuthApi) -> Response:
    token, password = str(form.get("token") or "")[:200], str(form.get("password") or "")
    error = None
    if password != form.get("password_again"):
        error = "The two passwords differ."
    elif len(password) < 12:
        error = "Choose a password of at least 12 characters."
    else:
        try:
            await auth.call("POST", "/internal/v1/setup", json={"token": token, "password": password[:256]})
            return see_other("/login?setup=done")
        except ApiRefused as refused:
            error = "This set-up link is unknown, used or expired." if refused.status == 404 else "Not accepted."
    return page(request, "setup.html", 400, session=visitor.session, token=token, error=error)


# ---- integrations ----


async def _integrations_page(request: Request, member, auth, status: int = 200, **extra: Any) -> HTMLResponse:
    listed = await auth.call("GET", f"/internal/v1/orgs/{member.org_id}/integrations")
    return page(request, "integrations.html", status, member=member, session=member.session,
                integrations=listed["integrations"], grace_choices=handlers.GRACE_CHOICES, **extra)  # fmt: skip


@router.get("/settings/integrations")
async def integrations(request: Request, member: MemberDep, auth: AuthApi) -> HTMLResponse:
    return await _integrations_page(request, member, auth)


@router.post("/settings/integrations")
async def create_integration(request: Request, form: CheckedForm, member: ManagesIntegrations, auth: AuthApi):
    name = str(form.get("name") or "").strip()[:100]
    if not name:
        return await _integrations_page(request, member, auth, 400, error="Give the integration a name.")
    issued = await auth.call(
        "POST", f"/internal/v1/orgs/{member.org_id}/integrations", json={"name": name, "actor": member.email}
    )
    return await _integrations_page(request, member, auth, 201, issued=issued, issued_what="created")


@router.post("/settings/integrations/{client_id}/rotate")
async def rotate(request: Request, client_id: str, form: CheckedForm, member: ManagesIntegrations, auth: AuthApi):
    grace = str(form.get("grace_seconds") or "0")
    grace = grace if grace in handlers.GRACE_CHOICES else "0"
    issued = await auth.call(
        "POST",
        f"/internal/v1/orgs/{member.org_id}/integrations/{client_id}/rotate",
        json={"grace_seconds": int(grace), "actor": member.email},
    )
    return await _integrations_page(request, member, auth, issued=issued, issued_what="rotated")


@router.post("/settings/integrations/{client_id}/revoke")
async def revoke(request: Request, client_id: str, form: CheckedForm, member: ManagesIntegrations, auth: AuthApi):
    path = f"/internal/v1/orgs/{member.org_id}/integrations/{client_id}/revoke"
    await auth.call("POST", path, json={"actor": member.email})
    return see_other("/settings/integrations")


# ---- webhook endpoints (the notifier's admin API) ----


async def _webhooks_page(request: Request, member, notifier, status: int = 200, **extra: Any) -> HTMLResponse:
    listed = await notifier.call("GET", "/admin/v1/webhooks", params={"org_id": member.org_id})
    return page(request, "webhooks.html", status, member=member, session=member.session,
                endpoints=listed["endpoints"], events=handlers.WEBHOOK_EVENTS, **extra)  # fmt: skip


@router.get("/settings/webhooks")
async def webhooks(request: Request, member: MemberDep, notifier: NotifierApi) -> HTMLResponse:
    return await _webhooks_page(request, member, notifier)


@router.post("/settings/webhooks")
async def create_webhook(request: Request, form: CheckedForm, member: ManagesIntegrations, notifier: NotifierApi):
    events = [e for e in form.getlist("events") if e in handlers.WEBHOOK_EVENTS]
    body = {"org_id": member.org_id, "url": str(form.get("url") or "")[:2000], "events": events,
            "description": str(form.get("description") or "")[:500] or None}  # fmt: skip
    try:
        created = await notifier.call("POST", "/admin/v1/webhooks", json=body)
    except ApiRefused as refused:
        why = refused.detail if refused.status in (400, 422) and refused.detail else "Give an https URL and events."
        return await _webhooks_page(request, member, notifier, 400, error=why)
    return await _webhooks_page(request, member, notifier, 201, created=created)


@router.post("/settings/webhooks/{endpoint_id}/delete")
async def delete_webhook(
    request: Request, endpoint_id: str, form: CheckedForm, member: ManagesIntegrations, notifier: NotifierApi
) -> Response:
    await notifier.call("DELETE", f"/admin/v1/webhooks/{endpoint_id}", params={"org_id": member.org_id})
    return see_other("/settings/webhooks")


# ---- drivers ----


@router.get("/drivers")
async def drivers(request: Request, member: MemberDep, auth: AuthApi, error: str | None = None) -> HTMLResponse:
    listed = await auth.call("GET", f"/internal/v1/orgs/{member.org_id}/drivers")
    return page(request, "drivers.html", 400 if error else 200, member=member, session=member.session,
                drivers=listed["drivers"], error=error)  # fmt: skip


@router.post("/drivers")
async def add_driver(request: Request, form: CheckedForm, member: ManagesDrivers, auth: AuthApi) -> Response:
    body = {"email": str(form.get("email") or "")[:320], "name": str(form.get("name") or "")[:200] or None,
            "actor": member.email}  # fmt: skip
    try:
        await auth.call("POST", f"/internal/v1/orgs/{member.org_id}/drivers", json=body)
    except ApiRefused as refused:
        if refused.status != 422:
            raise
        return await drivers(request, member, auth, error="That is not a valid email address.")
    return see_other("/drivers")


@router.post("/drivers/remove")
async def remove_driver(request: Request, form: CheckedForm, member: ManagesDrivers, auth: AuthApi) -> Response:
    body = {"email": str(form.get("email") or "")[:320], "actor": member.email}
    await auth.call("POST", f"/internal/v1/orgs/{member.org_id}/drivers/remove", json=body)
    return see_other("/drivers")


# ---- jobs ----


@router.get("/jobs")
async def jobs(request: Request, member: MemberDep, status_api: StatusApi, settings: SettingsDep) -> HTMLResponse:
    q = request.query_params
    status = q.get("status") if q.get("status") in handlers.JOB_STATUSES else None
    day = q.get("date", "")[:10] or None
    params = {"limit": settings.jobs_page_size, "status": status, "created_on": day, "cursor": q.get("cursor")}
    try:
        found = await status_api.call(
            "GET", f"/internal/v1/orgs/{member.org_id}/jobs", params={k: v for k, v in params.items() if v}
        )
    except ApiRefused as refused:
        if refused.status not in (400, 422):
            raise
        found, day = {"jobs": [], "next_cursor": None}, None
    refresh = settings.refresh_seconds if handlers.in_flight(found["jobs"]) else None
    return page(request, "jobs.html", member=member, session=member.session, jobs=found["jobs"],
                next_cursor=found["next_cursor"], status=status, day=day, statuses=handlers.JOB_STATUSES,
                refresh=refresh)  # fmt: skip


@router.get("/jobs/{job_id}")
async def job(request: Request, job_id: str, member: MemberDep, status_api: StatusApi, settings: SettingsDep):
    found = await status_api.call("GET", f"/internal/v1/orgs/{member.org_id}/jobs/{job_id}")
    refresh = settings.refresh_seconds if handlers.in_flight([found]) else None
    return page(request, "job.html", member=member, session=member.session, job=found,
                drawing=handlers.draw_route(found), refresh=refresh)  # fmt: skip


# ---- members and activity ----


async def _members_page(request: Request, member, auth, status: int = 200, **extra: Any) -> HTMLResponse:
    listed = await auth.call("GET", f"/internal/v1/orgs/{member.org_id}/members")
    return page(request, "members.html", status, member=member, session=member.session,
                members=listed["members"], roles=("admin", "developer", "viewer"), **extra)  # fmt: skip


@router.get("/members")
async def members(request: Request, member: ManagesMembers, auth: AuthApi) -> HTMLResponse:
    return await _members_page(request, member, auth)


@router.post("/members")
async def invite(request: Request, form: CheckedForm, member: ManagesMembers, auth: AuthApi) -> HTMLResponse:
    role = str(form.get("role") or "")
    body = {"email": str(form.get("email") or "")[:320], "role": role, "actor": member.email}
    try:
        invited = await auth.call("POST", f"/internal/v1/orgs/{member.org_id}/members", json=body)
    except ApiRefused as refused:
        why = "That email is a member already." if refused.status == 409 else "Give a valid email and a role."
        return await _members_page(request, member, auth, 400, error=why)
    # Built on the configured base URL, never on the request's Host header (a forged Host would
    # otherwise put an attacker's host in front of a live token).
    link = request.app.state.settings.routemate_base_url.rstrip("/") + "/setup?token=" + invited["setup_token"]
    return await _members_page(request, member, auth, 201, invited=invited, setup_link=link)


@router.post("/members/{member_id}/role")
async def change_role(request: Request, member_id: str, form: CheckedForm, member: ManagesMembers, auth: AuthApi):
    body = {"role": str(form.get("role") or ""), "actor": member.email}
    try:
        await auth.call("POST", f"/internal/v1/orgs/{member.org_id}/members/{member_id}/role", json=body)
    except ApiRefused as refused:
        if refused.status != 409:
            raise
        return await _members_page(request, member, auth, 409, error="The organization needs at least one admin.")
    return see_other("/members")


@router.post("/members/{member_id}/remove")
async def remove_member(request: Request, member_id: str, form: CheckedForm, member: ManagesMembers, auth: AuthApi):
    path = f"/internal/v1/orgs/{member.org_id}/members/{member_id}/remove"
    try:
        await auth.call("POST", path, json={"actor": member.email})
    except ApiRefused as refused:
        if refused.status != 409:
            raise
        return await _members_page(request, member, auth, 409, error="The organization needs at least one admin.")
    return see_other("/members")


@router.get("/activity")
async def activity(request: Request, member: ReadsActivity, auth: AuthApi) -> HTMLResponse:
    listed = await auth.call("GET", f"/internal/v1/orgs/{member.org_id}/activity")
    return page(request, "activity.html", member=member, session=member.session, activity=listed["activity"])
