"""The import request as integrators send it (the public body plus optional, additive fields)."""

import functools
from datetime import datetime
from typing import Annotated, Any, ClassVar, get_args

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator
from pydantic.networks import validate_email

from shared.inputs import PLAN_FUTURE, PLAN_PAST, within

Text = Annotated[str, Field(min_length=1, max_length=1000)]
Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Lng = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Skill = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
Skills = Annotated[list[Skill], Field(max_length=20)]
MAX_VEHICLES = 50


@functools.lru_cache(maxsize=4096)
def _valid_email(value: str) -> str:
    return validate_email(value)[1]


class Email(EmailStr):
    """EmailStr whose verdicts on valid addresses are remembered (a bounded LRU, in-process): an
    organization's imports name the same few drivers again and again, and email_validator's
    checks are the costliest part of validating an import. Invalid ones are checked every time
    (an exception is never cached), with EmailStr's errors and schema."""

    @classmethod
    def _validate(cls, input_value: str, /) -> str:
        return _valid_email(input_value)


MAX_WINDOWS = 2


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
    # The list form: up to two windows (a morning and an afternoon); not together with time_window.
    time_windows: Annotated[list[TimeWindowIn], Field(min_length=1, max_length=MAX_WINDOWS)] | None = None
    skills: Skills | None = None
    priority: Annotated[int, Field(ge=0, le=1000)] | None = None
    service_minutes: Annotated[float, Field(ge=0, le=1440, allow_inf_nan=False)] | None = None
    notes: Annotated[str, Field(max_length=2000)] | None = None
    phone: Annotated[str, Field(max_length=50)] | None = None
    email: Email | None = None


class DepotIn(Placeable):
    WHAT: ClassVar[str] = "the depot"


class VehiclePlaceIn(Placeable):
    WHAT: ClassVar[str] = "a vehicle's start or end"


class VehicleIn(Open):
    """One vehicle of a fleet import; every limit is optional."""

    driver_email: Email
    capacity: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    shift_start: datetime | None = None
    shift_end: datetime | None = None
    start: VehiclePlaceIn | None = None
    end: VehiclePlaceIn | None = None
    max_stops: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_duration_minutes: Annotated[float, Field(gt=0, le=7 * 1440, allow_inf_nan=False)] | None = None
    skills: Skills | None = None

    @model_validator(mode="after")
    def _shift(self) -> "VehicleIn":
        _aware(self.shift_start, "shift_start")
        _aware(self.shift_end, "shift_end")
        if self.shift_start and self.shift_end and self.shift_end <= self.shift_start:
            raise ValueError("the shift ends before it starts")
        return self


class ImportIn(Open):
    external_job_id: Id
    title: Annotated[str, Field(min_length=1, max_length=500)]
    driver_email: Email | None = None
    stops: Annotated[list[StopIn], Field(min_length=1)]
    depot: DepotIn | None = None
    return_to_depot: bool = False
    start_time: datetime | None = None
    vehicle_capacity: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    # Additive: a fleet, instead of driver_email (one route per vehicle).
    vehicles: Annotated[list[VehicleIn], Field(min_length=1, max_length=MAX_VEHICLES)] | None = None

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


def _error(pointer: str, reason: str, kind: str) -> dict[str, str]:
    return {"pointer": pointer, "reason": reason, "type": kind}


def fleet_errors(model: ImportIn) -> list[dict[str, str]]:
    """The fleet fields' rules across fields, each with the pointer of the field to change."""
    errors: list[dict[str, str]] = []
    if model.vehicles is not None:
        if model.driver_email is not None:
            errors.append(_error("/vehicles", "send either driver_email or vehicles, not both", "conflict"))
        if model.vehicle_capacity is not None:
            errors.append(_error("/vehicle_capacity", "with vehicles, set each vehicle's capacity", "conflict"))
        drivers: dict[str, int] = {}
        for i, vehicle in enumerate(model.vehicles):
            email = str(vehicle.driver_email).lower()
            if email in drivers:
                errors.append(
                    _error(f"/vehicles/{i}/driver_email", f"duplicates /vehicles/{drivers[email]}", "duplicate")
                )
            drivers.setdefault(email, i)
            if vehicle.start is None and model.depot is None:
                errors.append(_error(f"/vehicles/{i}/start", "a vehicle needs a start, or the job a depot", "missing"))
    for i, stop in enumerate(model.stops):
        if stop.time_windows is None:
            continue
        if stop.time_window is not None:
            errors.append(_error(f"/stops/{i}/time_windows", "send time_window or time_windows, not both", "conflict"))
        for w in range(1, len(stop.time_windows)):
            if stop.time_windows[w].start < stop.time_windows[w - 1].end:
                reason = "windows must be in order and must not overlap"
                errors.append(_error(f"/stops/{i}/time_windows/{w}/start", reason, "overlap"))
    return errors


def unknown_fields(model: BaseModel, pointer: str = "") -> list[str]:
    """JSON pointers of every field the client sent that the contract does not define."""
    found: list[str] = []
    _unknown(model, pointer, found)
    return found


def _unknown(model: BaseModel, pointer: str, found: list[str]) -> None:
    """unknown_fields() into `found`. Walks only the fields that can hold a model, and spells a
    pointer out only on the way to an unknown field's: a valid import (all of them known) is a
    few dictionary reads per stop, not a string per stop."""
    if model.__pydantic_extra__:
        found += [f"{pointer}/{name}" for name in model.__pydantic_extra__]
    values = model.__dict__
    for name in _nested(type(model)):
        value: Any = values[name]
        if isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel) and has_unknown(item):
                    _unknown(item, f"{pointer}/{name}/{index}", found)
        elif isinstance(value, BaseModel) and has_unknown(value):
            _unknown(value, f"{pointer}/{name}", found)


def has_unknown(model: BaseModel) -> bool:
    """Whether the client sent any field the contract does not define (unknown_fields() is not empty)."""
    if model.__pydantic_extra__:
        return True
    values = model.__dict__
    for name in _nested(type(model)):
        value: Any = values[name]
        if isinstance(value, list):
            if any(isinstance(item, BaseModel) and has_unknown(item) for item in value):
                return True
        elif isinstance(value, BaseModel) and has_unknown(value):
            return True
    return False


@functools.cache
def _nested(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of `model` whose type can hold a model or a list of them."""
    return tuple(name for name, info in model.model_fields.items() if _holds_model(info.annotation))


def _holds_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_model(arg) for arg in get_args(annotation))
