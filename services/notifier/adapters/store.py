"""The notifier's database: endpoints, deliveries durably scheduled before a change's offset is
committed, leases so one delivery is attempted by one worker at a time, and every attempt."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.notifier.adapters.schema import migrate
from services.notifier.adapters.tables import AttemptRow, DeliveryRow, EndpointRow
from shared.events import utcnow
from shared.vocabulary import as_utc

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


@dataclass(frozen=True)
class Outcome:
    """What one attempt settles: the delivery's next state, and the endpoint's."""

    status: str  # pending (retry at next_attempt_at) | succeeded | failed
    next_attempt_at: datetime | None
    disable_reason: str | None = None  # set: the endpoint is disabled now


@dataclass(frozen=True)
class Backlog:
    endpoint_id: str
    pending: int
    oldest: datetime


class DeliveryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        migrate(engine)

    # endpoints
    def add_endpoint(self, row: EndpointRow) -> EndpointRow:
        with Session(self.engine, expire_on_commit=False) as s:
            s.add(row)
            s.commit()
        return row

    def endpoints(self, org_id: str) -> list[EndpointRow]:
        with Session(self.engine) as s:
            query = select(EndpointRow).where(EndpointRow.org_id == org_id).order_by(col(EndpointRow.created_at))
            return list(s.exec(query).all())

    def endpoint(self, org_id: str, endpoint_id: str) -> EndpointRow | None:
        with Session(self.engine) as s:
            row = s.get(EndpointRow, endpoint_id)
            return row if row is not None and row.org_id == org_id else None

    def save_endpoint(self, row: EndpointRow) -> EndpointRow:
        with Session(self.engine, expire_on_commit=False) as s:
            row = s.merge(row)
            s.commit()
        return row

    def delete_endpoint(self, endpoint_id: str) -> None:
        with Session(self.engine) as s:
            s.exec(delete(AttemptRow).where(col(AttemptRow.endpoint_id) == endpoint_id))
            s.exec(delete(DeliveryRow).where(col(DeliveryRow.endpoint_id) == endpoint_id))
            s.exec(delete(EndpointRow).where(col(EndpointRow.id) == endpoint_id))
            s.commit()

    def forget_jobs(self, job_ids: list[str]) -> int:
        """Erased jobs: their deliveries (pending or not: each body is a copy of the job) and their attempts."""
        if not job_ids:
            return 0
        with Session(self.engine) as s:
            ids = select(DeliveryRow.id).where(col(DeliveryRow.job_id).in_(job_ids))
            s.exec(delete(AttemptRow).where(col(AttemptRow.delivery_id).in_(ids)))
            gone = s.exec(delete(DeliveryRow).where(col(DeliveryRow.job_id).in_(job_ids))).rowcount
            s.commit()
            return gone

    def subscribers(self, org_ids: Iterable[str]) -> list[EndpointRow]:
        """The active endpoints of these organizations (each filters change types itself)."""
        with Session(self.engine) as s:
            query = select(EndpointRow).where(col(EndpointRow.org_id).in_(set(org_ids)), EndpointRow.status == "active")
            return list(s.exec(query).all())

    # deliveries
    def enqueue(self, deliveries: list[DeliveryRow]) -> int:
        """Insert deliveries in one transaction; one already there (same endpoint and change) is kept."""
        if not deliveries:
            return 0
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        values = [d.model_dump() for d in deliveries]
        for value in values:
            value.pop("seq", None)
        statement = dialect.insert(DeliveryRow.__table__).values(values)
        statement = statement.on_conflict_do_nothing(index_elements=["endpoint_id", "change_id"])
        statement = statement.returning(DeliveryRow.__table__.c.seq)  # rowcount is -1 on PostgreSQL here
        with Session(self.engine) as s:
            added = len(s.exec(statement).all())  # type: ignore[call-overload]
            s.commit()
            return added

    def claim(self, owner: str, capacity: dict[str, int], default_capacity: int, limit: int, lease: timedelta):
        """Lease due deliveries to `owner`: per endpoint at most its free capacity, and only the
        earliest pending delivery of each (endpoint, job), so a job's events go out in order.
        Returns (delivery, endpoint) pairs."""
        now = utcnow()
        d2 = DeliveryRow.__table__.alias("d2")
        first_of_job = (
            select(func.min(d2.c.seq))
            .where(
                d2.c.endpoint_id == DeliveryRow.__table__.c.endpoint_id,
                d2.c.job_id == DeliveryRow.__table__.c.job_id,
                d2.c.status == PENDING,
            )
            .scalar_subquery()
        )
        rank = func.row_number().over(partition_by=col(DeliveryRow.endpoint_id), order_by=col(DeliveryRow.seq))
        full = [e for e, free in capacity.items() if free <= 0]
        eligible = (
            select(col(DeliveryRow.id), col(DeliveryRow.endpoint_id), rank.label("rank"))
            .join(EndpointRow, col(EndpointRow.id) == col(DeliveryRow.endpoint_id))
            .where(
                DeliveryRow.status == PENDING,
                col(DeliveryRow.next_attempt_at) <= now,
                or_(col(DeliveryRow.lease_until).is_(None), col(DeliveryRow.lease_until) < now),
                EndpointRow.status == "active",
                col(DeliveryRow.seq) == first_of_job,
                col(DeliveryRow.endpoint_id).not_in(full),
            )
            .subquery()
        )
        wanted = select(eligible.c.id, eligible.c.endpoint_id).where(eligible.c.rank <= default_capacity).limit(limit)
        with Session(self.engine, expire_on_commit=False) as s:
            chosen, taken = [], dict.fromkeys(capacity, 0)
            for delivery_id, endpoint_id in s.exec(wanted).all():  # type: ignore[call-overload]
                if taken.get(endpoint_id, 0) < capacity.get(endpoint_id, default_capacity):
                    chosen.append(delivery_id)
                    taken[endpoint_id] = taken.get(endpoint_id, 0) + 1
            if not chosen:
                return []
            s.exec(
                update(DeliveryRow)
                .where(
                    col(DeliveryRow.id).in_(chosen),
                    or_(col(DeliveryRow.lease_until).is_(None), col(DeliveryRow.lease_until) < now),
                )
                .values(lease_owner=owner, lease_until=now + lease)
            )
            s.commit()
            rows = s.exec(
                select(DeliveryRow, EndpointRow)
                .join(EndpointRow, col(EndpointRow.id) == col(DeliveryRow.endpoint_id))
                .where(col(DeliveryRow.id).in_(chosen), DeliveryRow.lease_owner == owner)
                .order_by(col(DeliveryRow.seq))
            ).all()
            return [(d, e) for d, e in rows]

    def finish(self, delivery: DeliveryRow, attempt: AttemptRow, outcome: Outcome, failing_since: datetime | None):
        """Record an attempt and its outcome, and the endpoint's failing state, in one transaction."""
        self.finish_many([(delivery, attempt, outcome, failing_since)])

    def finish_many(self, results: list[tuple[DeliveryRow, AttemptRow, Outcome, datetime | None]]) -> None:
        """Several attempts' records in one transaction (one commit instead of one each)."""
        with Session(self.engine) as s:
            for delivery, attempt, outcome, failing_since in results:
                s.add(attempt)
                s.exec(
                    update(DeliveryRow)
                    .where(col(DeliveryRow.id) == delivery.id)
                    .values(
                        status=outcome.status,
                        attempts=DeliveryRow.attempts + 1,
                        next_attempt_at=outcome.next_attempt_at or delivery.next_attempt_at,
                        lease_owner=None,
                        lease_until=None,
                        last_status_code=attempt.status_code,
                        last_error=attempt.error,
                        finished_at=None if outcome.status == PENDING else attempt.at,
                    )
                )
                values: dict = {"failing_since": failing_since}
                if outcome.disable_reason:
                    values |= {
                        "status": "disabled",
                        "disabled_reason": outcome.disable_reason,
                        "updated_at": attempt.at,
                    }
                s.exec(update(EndpointRow).where(col(EndpointRow.id) == delivery.endpoint_id).values(**values))
            s.commit()

    def release(self, delivery_ids: list[str]) -> None:
        """Give leases back (the worker is stopping before it attempted them)."""
        with Session(self.engine) as s:
            s.exec(
                update(DeliveryRow)
                .where(col(DeliveryRow.id).in_(delivery_ids))
                .values(lease_owner=None, lease_until=None)
            )
            s.commit()

    def deliveries(self, endpoint_id: str, before_seq: int | None, size: int) -> list[tuple[DeliveryRow, list]]:
        """An endpoint's deliveries newest first, each with its attempts (newest first)."""
        with Session(self.engine) as s:
            query = select(DeliveryRow).where(DeliveryRow.endpoint_id == endpoint_id)
            if before_seq is not None:
                query = query.where(col(DeliveryRow.seq) < before_seq)
            rows = list(s.exec(query.order_by(col(DeliveryRow.seq).desc()).limit(size)).all())
            ids = [d.id for d in rows]
            attempts: dict[str, list[AttemptRow]] = {i: [] for i in ids}
            if ids:
                found = s.exec(
                    select(AttemptRow).where(col(AttemptRow.delivery_id).in_(ids)).order_by(col(AttemptRow.id).desc())
                )
                for attempt in found.all():
                    attempts[attempt.delivery_id].append(attempt)
            return [(d, attempts[d.id]) for d in rows]

    def delivery(self, endpoint_id: str, delivery_id: str) -> DeliveryRow | None:
        with Session(self.engine) as s:
            row = s.exec(select(DeliveryRow).where(DeliveryRow.id == delivery_id)).first()
            return row if row is not None and row.endpoint_id == endpoint_id else None

    def redeliver(self, delivery_id: str) -> None:
        """Attempt a delivery again now, the schedule from the start (the same webhook-id)."""
        with Session(self.engine) as s:
            s.exec(
                update(DeliveryRow)
                .where(col(DeliveryRow.id) == delivery_id)
                .values(status=PENDING, attempts=0, next_attempt_at=utcnow(), finished_at=None)
            )
            s.commit()

    def backlog(self) -> list[Backlog]:
        """Pending deliveries per endpoint with the oldest one's creation time."""
        with Session(self.engine) as s:
            query = (
                select(DeliveryRow.endpoint_id, func.count(), func.min(DeliveryRow.created_at))
                .where(DeliveryRow.status == PENDING)
                .group_by(col(DeliveryRow.endpoint_id))
            )
            return [Backlog(e, n, as_utc(oldest)) for e, n, oldest in s.exec(query).all()]  # type: ignore[call-overload]

    def overdue_since(self) -> datetime | None:
        """When the longest-waiting due delivery became due (None: nothing is waiting for the worker)."""
        now = utcnow()
        with Session(self.engine) as s:
            query = select(func.min(DeliveryRow.next_attempt_at)).where(
                DeliveryRow.status == PENDING,
                col(DeliveryRow.next_attempt_at) <= now,
                or_(col(DeliveryRow.lease_until).is_(None), col(DeliveryRow.lease_until) < now),
            )
            return as_utc(s.exec(query).first())  # type: ignore[call-overload]

    def counts(self, endpoint_id: str) -> dict[str, int]:
        with Session(self.engine) as s:
            query = (
                select(DeliveryRow.status, func.count())
                .where(and_(DeliveryRow.endpoint_id == endpoint_id))
                .group_by(col(DeliveryRow.status))
            )
            return dict(s.exec(query).all())  # type: ignore[call-overload]
