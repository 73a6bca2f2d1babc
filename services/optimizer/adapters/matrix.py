"""Distance and duration matrices: great-circle x circuity by default, or an OSRM `table` service."""

import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from shared.geo import EARTH_RADIUS_KM

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Matrix:
    distance_m: np.ndarray  # int64, n x n
    duration_s: np.ndarray  # int64, n x n
    provider: str


class MatrixProvider(Protocol):
    name: str

    def build(self, points: list[tuple[float, float]]) -> Matrix: ...


class GreatCircle:
    """Haversine distance times a circuity factor, at an average speed."""

    name = "great_circle"

    def __init__(self, circuity: float, speed_kmh: float) -> None:
        self.circuity, self.speed_kmh = circuity, speed_kmh

    def build(self, points: list[tuple[float, float]]) -> Matrix:
        pts = np.radians(np.asarray(points, dtype=float).reshape(-1, 2))
        lat, lng = pts[:, 0:1], pts[:, 1:2]
        a = np.sin((lat.T - lat) / 2) ** 2 + np.cos(lat) * np.cos(lat.T) * np.sin((lng.T - lng) / 2) ** 2
        km = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1))) * self.circuity
        return Matrix(
            np.rint(km * 1000).astype(np.int64), np.rint(km / self.speed_kmh * 3600).astype(np.int64), self.name
        )


class RoutingUnavailable(Exception):
    """The routing service failed or gave an unusable answer."""


class OsrmTable:
    """An OSRM-compatible `table` service (OSRM, or Valhalla's OSRM-compatible API)."""

    name = "osrm"

    def __init__(self, base_url: str, profile: str, timeout_s: float) -> None:
        self.base_url, self.profile, self.timeout_s = base_url.rstrip("/"), profile, timeout_s

    def build(self, points: list[tuple[float, float]]) -> Matrix:
        coords = ";".join(f"{lng:.6f},{lat:.6f}" for lat, lng in points)
        url = f"{self.base_url}/table/v1/{self.profile}/{coords}"
        import httpx  # only OSRM needs it; the great-circle fallback and the CLI start without

        try:
            answer = httpx.get(url, params={"annotations": "distance,duration"}, timeout=self.timeout_s)
            body = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RoutingUnavailable(f"routing service unreachable: {type(exc).__name__}") from None
        if answer.status_code != 200 or body.get("code") != "Ok":
            raise RoutingUnavailable(f"routing service answered {answer.status_code} {body.get('code')}")
        try:
            dist = np.asarray(body["distances"], dtype=float)
            dur = np.asarray(body["durations"], dtype=float)
        except (KeyError, TypeError, ValueError):
            raise RoutingUnavailable("routing service answer lacks distances/durations") from None
        if dist.shape != (len(points), len(points)) or dur.shape != dist.shape or np.isnan(dist).any():
            raise RoutingUnavailable("routing service answer has the wrong shape or unreachable pairs")
        return Matrix(np.rint(dist).astype(np.int64), np.rint(dur).astype(np.int64), self.name)
