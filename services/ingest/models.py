"""The import request as integrators send it (the public body plus optional, additive fields)."""

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from shared.inputs import PLAN_FUTURE, PLAN_PAST, within

Text = Annotated[str, Field(min_length=1, max_length=1000)]
Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Lng = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


def _aware(value: datetime | None, name: str) -> None:
    """A planning time: with an offset, and in the planning window around now (see shared.inputs)."""
    within(value, PLAN_PAST, PLAN_FUTURE, name)


class Open(BaseModel):
    """Unknown fields are kept aside (and reported as warnings), never a failure."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


class TimeWindowIn(Open):
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> "TimeWindowIn":
        _aware(self.start, "start")
        _aware(self.end, "end")
        if self.end <= self.start:
            raise ValueError("the time window ends before it starts")
        return self


class Placeable(Open):
    """A place given by address, by lat/lng, or both; never by half a coordinate."""

    WHAT: ClassVar[str] = "a place"
    address: Text | None = None
    lat: Lat | None = None
    lng: Lng | None = None

    @model_validator(mode="after")
    def _placeable(self) -> "Placeable":
        if (self.lat is None) != (self.lng is None):
            raise ValueError("lat and lng go together")
        if self.address is None and self.lat is None:
            raise ValueError(f"{self.WHAT} needs an address or lat/lng")
        return self


class StopIn(Placeable):
    WHAT: ClassVar[str] = "a stop"
    external_stop_id: Id
    label: Annotated[str, Field(max_length=500)] | None = None
    parcel_count: Annotated[int, Field(ge=0, le=10_000)] = 1
    time_window: TimeWindowIn | None = None
    service_minutes: Annotated[float, Field(ge=0, le=1440, allow_inf_nan=False)] | None = None
    notes: Annotated[str, Field(max_length=2000)] | None = None
    phone: Annotated[str, Field(max_length=50)] | None = None
    email: EmailStr | None = None


class DepotIn(Placeable):
    WHAT: ClassVar[str] = "the depot"


class ImportIn(Open):
    external_job_id: Id
    title: Annotated[str, Field(min_length=1, max_length=500)]
    driver_email: EmailStr | None = None
    stops: Annotated[list[StopIn], Field(min_length=1)]
    depot: DepotIn | None = None
    return_to_depot: bool = False
    start_time: datetime | None = None
    vehicle_capacity: Annotated[int, Field(ge=1, le=1_000_000)] | None = None

    @field_validator("start_time")
    @classmethod
    def _start_in_window(cls, value: datetime | None) -> datetime | None:
        _aware(value, "start_time")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "ImportIn":
        if self.return_to_depot and self.depot is None:
            raise ValueError("return_to_depot needs a depot")
        return self


def unknown_fields(model: BaseModel, pointer: str = "") -> list[str]:
    """JSON pointers of every field the client sent that the contract does not define."""
    found = [f"{pointer}/{name}" for name in (model.model_extra or {})]
    for name in type(model).model_fields:
        value: Any = getattr(model, name)
        items = enumerate(value) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            if isinstance(item, BaseModel):
                sub = f"{pointer}/{name}" + (f"/{index}" if index is not None else "")
                found += unknown_fields(item, sub)
    return found
