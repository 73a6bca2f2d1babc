"""The OSRM-compatible matrix provider against a local HTTP server speaking OSRM's `table` API."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.optimizer.adapters import matrix_provider
from services.optimizer.adapters.matrix import RoutingUnavailable
from services.optimizer.settings import OptimizerSettings
from shared.geo import haversine_km


class FakeOsrm(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if (
            not path.startswith("/table/v1/driving/")
            or "annotations=distance%2Cduration" not in query
            and "annotations=distance,duration" not in query
        ):
            self.send_response(400)
            self.end_headers()
            return
        coords = [tuple(map(float, c.split(","))) for c in path.rsplit("/", 1)[1].split(";")]
        if len(coords) == 3:  # our signal for "the routing engine is broken"
            body = {"code": "NoTable", "message": "boom"}
        else:
            km = [[haversine_km(a[1], a[0], b[1], b[0]) * 1.5 for b in coords] for a in coords]
            body = {
                "code": "Ok",
                "distances": [[k * 1000 for k in row] for row in km],
                "durations": [[k / 50 * 3600 for k in row] for row in km],
            }
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


def routing(url: str, timeout_s: float = 5):
    """The matrix provider the optimizer builds when ROUTING_URL points at `url`."""
    return matrix_provider(OptimizerSettings(routing_url=url, routing_timeout_seconds=timeout_s))


@pytest.fixture(scope="module")
def osrm():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOsrm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_table_service_gives_the_matrix(osrm):
    points = [(-27.47, 153.02), (-27.48, 153.01), (-27.43, 153.04), (-27.45, 153.06)]
    matrix = routing(osrm).build(points)
    assert matrix.provider == "osrm" and matrix.distance_m.shape == (4, 4)
    expected = haversine_km(*points[0], *points[2]) * 1500
    assert abs(matrix.distance_m[0, 2] - expected) < 2
    assert matrix.duration_s[0, 2] == round(expected / 1000 / 50 * 3600)


def test_an_engine_error_or_no_engine_is_routing_unavailable(osrm):
    with pytest.raises(RoutingUnavailable, match="NoTable"):
        routing(osrm).build([(-27.47, 153.02), (-27.48, 153.01), (-27.43, 153.04)])
    with pytest.raises(RoutingUnavailable, match="unreachable"):
        routing("http://127.0.0.1:9", 1).build([(-27.47, 153.02), (-27.48, 153.01)])
