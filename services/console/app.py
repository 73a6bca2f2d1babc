"""Wiring of the console: sessions in the durable Redis, auth's and status's internal endpoints,
the pages, their templates and static assets, and the refusals as HTML pages."""

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from redis.asyncio import Redis

from services.console.adapters.internal_api import ApiRefused, ApiUnavailable, InternalApi
from services.console.adapters.sessions import SessionStore
from services.console.deps import CsrfRefused, Forbidden, NotSignedIn
from services.console.routes import router
from services.console.settings import ConsoleSettings
from services.console.views import install_filters
from shared.http import install_request_ids
from shared.service import make_redis, redis_check, service_app

SERVICE = "console"
HERE = Path(__file__).parent
# No inline script or style anywhere: everything comes from /static on this origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # a set-up link's token never leaves in a Referer
    "Cache-Control": "no-store",
}


def create_app(
    settings: ConsoleSettings | None = None,
    *,
    redis: Redis | None = None,
    auth: InternalApi | None = None,
    status: InternalApi | None = None,
    notifier: InternalApi | None = None,
) -> FastAPI:
    """The console; every argument left out is the production one its settings name."""
    settings = settings or ConsoleSettings()
    redis = redis or make_redis(settings)
    assert settings.internal_token is not None
    token = settings.internal_token.get_secret_value()
    auth = auth or InternalApi(settings.admin_url, token)
    status = status or InternalApi(settings.status_url, token)
    notifier = notifier or InternalApi(settings.notifier_admin_url, token)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await auth.aclose()
        await status.aclose()
        await notifier.aclose()
        await redis.aclose()

    app = service_app(SERVICE, lifespan=lifespan, title="RouteMate console")
    # Pages only: no API documentation of the console's own (the edge serves the API's at /docs).
    hidden = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) not in hidden]
    app.state.settings, app.state.auth, app.state.status = settings, auth, status
    app.state.notifier = notifier
    app.state.sessions = SessionStore(redis, settings.session_idle_seconds, settings.session_absolute_seconds)
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    install_filters(app.state.templates.env)
    app.state.health_checks["redis"] = redis_check(redis)
    install_request_ids(app)
    install_refusals(app)
    app.middleware("http")(page_headers)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    return app


async def page_headers(request: Request, call_next):
    # /metrics is for Prometheus scraping the pod; a request relayed by a proxy (the edge, an
    # Ingress at `/`) is from the internet: it does not exist for them.
    if request.url.path == "/metrics" and ("x-real-ip" in request.headers or "x-forwarded-for" in request.headers):
        return HTMLResponse("Not found", status_code=404)
    response = await call_next(request)
    if not request.url.path.startswith("/static/"):
        response.headers.update(PAGE_HEADERS)
    return response


def install_refusals(app: FastAPI) -> None:
    def refusal(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
        context = {"title": title, "detail": detail}
        return app.state.templates.TemplateResponse(request, "error.html", context, status_code=status)

    async def not_signed_in(request: Request, _: Exception):
        return RedirectResponse("/login", status_code=303)

    async def forbidden(request: Request, _: Exception):
        return refusal(request, 403, "Not allowed", "Your role does not allow this. Ask an admin of your organization.")

    async def csrf(request: Request, _: Exception):
        return refusal(request, 403, "Form expired", "This form is no longer valid. Reload the page and try again.")

    async def refused(request: Request, exc: Exception):
        assert isinstance(exc, ApiRefused)
        if exc.status == 404:
            return refusal(request, 404, "Not found", "There is no such thing in your organization.")
        return refusal(request, 400, "Not accepted", exc.detail or "The request was not accepted.")

    async def unavailable(request: Request, _: Exception):
        return refusal(request, 503, "Unavailable", "A RouteMate service is not answering; try again shortly.")

    app.add_exception_handler(NotSignedIn, not_signed_in)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(CsrfRefused, csrf)
    app.add_exception_handler(ApiRefused, refused)
    app.add_exception_handler(ApiUnavailable, unavailable)
