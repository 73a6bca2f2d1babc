"""Delivery progress of one stop."""

from datetime import datetime
from typing import ClassVar, Literal

from shared.events.envelope import UPCASTERS, Value, sealed_from_now_on
from shared.events.jobs import JobEvent

STOPS_STATUS = "routemate.stops.status"

StopOutcome = Literal["completed", "failed", "skipped"]


class ProofOfDelivery(Value):
    recipient_name: str | None = None
    signature_url: str | None = None
    photo_urls: tuple[str, ...] = ()


class StopStatusChanged(JobEvent):
    TOPIC: ClassVar[str] = STOPS_STATUS
    event_type: Literal["StopStatusChanged"] = "StopStatusChanged"
    schema_version: Literal[2] = 2  # 2: personal fields sealed (shared/pii.py)
    stop_id: str
    external_stop_id: str
    status: StopOutcome
    status_at: datetime
    reason: str | None = None
    notes: str | None = None
    proof: ProofOfDelivery | None = None


UPCASTERS[("StopStatusChanged", 1)] = sealed_from_now_on
