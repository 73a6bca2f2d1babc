"""The optimizer's adapters: distance and duration matrices, and the factories that choose them.

The solver engines (services/optimizer/solver.py, ils.py) are not adapters: they are the
domain's algorithms, which the handler calls directly.
"""

from services.optimizer.adapters.matrix import GreatCircle, MatrixProvider, OsrmTable
from services.optimizer.settings import OptimizerSettings


def great_circle(settings: OptimizerSettings) -> GreatCircle:
    """Great-circle distance times CIRCUITY_FACTOR, at AVERAGE_SPEED_KMH: needs no service."""
    return GreatCircle(settings.circuity_factor, settings.average_speed_kmh)


def matrix_provider(settings: OptimizerSettings) -> MatrixProvider:
    """The OSRM-compatible service at ROUTING_URL, or great-circle estimates when it is unset."""
    if settings.routing_url:
        return OsrmTable(settings.routing_url, settings.routing_profile, settings.routing_timeout_seconds)
    return great_circle(settings)
