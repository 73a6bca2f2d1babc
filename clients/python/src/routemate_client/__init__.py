"""RouteMate Integration API client: `Client`, `AsyncClient`, typed models, errors, `webhooks.verify`."""

from routemate_client._core import __version__
from routemate_client.aio import AsyncClient
from routemate_client.client import Client
from routemate_client.errors import (
    AuthenticationError,
    ConflictError,
    ConnectionFailedError,
    InvalidRequestError,
    JobWaitTimeout,
    NotFoundError,
    PreconditionFailed,
    RateLimitedError,
    RouteMateError,
    UnavailableError,
)
from routemate_client.models import (
    Depot,
    ImportAccepted,
    ImportJob,
    ImportStop,
    Job,
    JobPage,
    Stop,
    StopStatusAccepted,
    TimeWindow,
)

__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ConflictError",
    "ConnectionFailedError",
    "Depot",
    "ImportAccepted",
    "ImportJob",
    "ImportStop",
    "InvalidRequestError",
    "Job",
    "JobPage",
    "JobWaitTimeout",
    "NotFoundError",
    "PreconditionFailed",
    "RateLimitedError",
    "RouteMateError",
    "Stop",
    "StopStatusAccepted",
    "TimeWindow",
    "UnavailableError",
    "__version__",
]
