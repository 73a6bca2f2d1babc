"""Optimizer settings."""

from pydantic import Field

from shared.lanes import LaneSettings


class OptimizerSettings(LaneSettings):
    optimizer_port: int = 8085
    circuity_factor: float = Field(1.3, ge=1.0, le=3.0, description="road distance / great-circle distance")
    average_speed_kmh: float = Field(35.0, gt=0, le=130)
    default_service_minutes: float = Field(2.0, ge=0)
    service_minutes_per_parcel: float = Field(0.5, ge=0)
    routing_url: str | None = Field(None, description="OSRM-compatible base URL; unset: great-circle matrix")
    routing_profile: str = "driving"
    routing_timeout_seconds: float = 10.0
    solver_kicks_per_stop: int = Field(
        150, ge=0, le=100_000, description="local search effort per stop (jobs without windows or capacity)"
    )
    solver_ms_per_stop: float = Field(9.0, gt=0, description="OR-Tools time per stop (jobs with windows or capacity)")
    # The per-size budget: a hard cap on one solve of n stops, clamp(n / 100 x SOLVER_SECONDS_PER_100_STOPS,
    # SOLVER_MIN_SECONDS, SOLVER_MAX_SECONDS). Solves stop on effort first (deterministic); the cap
    # only bounds a huge job on a slow machine. Platform teams tune the three together.
    solver_min_seconds: float = Field(1.8, gt=0, description="the budget of the smallest jobs")
    solver_seconds_per_100_stops: float = Field(10.0, ge=0, description="the budget grows by this per 100 stops")
    solver_max_seconds: float = Field(30.0, gt=0, description="cap on any one solve, whatever its size")
    solver_compiled_min_stops: int = Field(
        0,
        ge=0,
        description="jobs with fewer stops take the plain-Python local search, which needs no numba loaded "
        "(a one-off process: routemate optimize); 0: always the compiled one",
    )
    exact_max_stops: int = Field(8, ge=0, le=15, description="jobs this small are solved exactly")
    solver_poll_records: int = Field(4, ge=1, le=500, description="jobs taken per Kafka poll")
    solver_in_hand: int = Field(
        2,
        ge=1,
        le=8,
        description="jobs each lane keeps in hand (a consumer each, in the lane's group), so the solver "
        "thread solves the next while the last is published; 1: one job after another",
    )

    def solver_budget(self, stops: int) -> float:
        """The hard cap on one solve of this many stops (the per-size budget)."""
        scaled = self.solver_seconds_per_100_stops * stops / 100
        return min(self.solver_max_seconds, max(self.solver_min_seconds, scaled))
