"""The auth database adapter: organizations, integrations, drivers, members and activity over SQLModel."""

import secrets

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from services.auth.adapters.schema import migrate
from services.auth.adapters.tables import AuditRow, DriverRow, IntegrationRow, MemberRow, OrganizationRow
from shared.events import utcnow


class AuthStore:
    """Synchronous by design: callers run it in a worker thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        migrate(engine)

    def _session(self) -> Session:
        # Rows outlive their session (they are handed back to the event loop thread).
        return Session(self.engine, expire_on_commit=False)

    def organization(self, name: str, create: bool = True) -> OrganizationRow | None:
        """The organization called `name`, created on first use."""
        with self._session() as session:
            row = session.exec(select(OrganizationRow).where(OrganizationRow.name == name)).first()
            if row or not create:
                return row
            row = OrganizationRow(org_id="org_" + secrets.token_hex(8), name=name, created_at=utcnow())
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # created concurrently: take the winner's row
                session.rollback()
                return session.exec(select(OrganizationRow).where(OrganizationRow.name == name)).one()
            session.refresh(row)
            return row

    def add_integration(self, row: IntegrationRow) -> None:
        with self._session() as session:
            session.add(row)
            session.commit()

    def integration(self, client_id: str) -> IntegrationRow | None:
        with self._session() as session:
            return session.get(IntegrationRow, client_id)

    def integrations(self, org_id: str | None) -> list[tuple[IntegrationRow, str]]:
        with self._session() as session:
            query = select(IntegrationRow, OrganizationRow.name).join(OrganizationRow)
            if org_id:
                query = query.where(IntegrationRow.org_id == org_id)
            return list(session.exec(query.order_by(IntegrationRow.created_at)).all())

    def save_integration(self, row: IntegrationRow) -> None:
        with self._session() as session:
            session.merge(row)
            session.commit()

    def upsert_driver(self, org_id: str, email: str, name: str | None, active: bool) -> DriverRow:
        with self._session() as session:
            row = session.get(DriverRow, (org_id, email))
            if row is None:
                row = DriverRow(org_id=org_id, email=email, created_at=utcnow())
            row.name, row.active = name if name is not None else row.name, active
            session.add(row)
            session.commit()
            session.refresh(row)
            return row

    def remove_driver(self, org_id: str, email: str) -> bool:
        with self._session() as session:
            row = session.get(DriverRow, (org_id, email))
            if row is None:
                return False
            session.delete(row)
            session.commit()
            return True

    def drivers(self, org_id: str) -> list[DriverRow]:
        with self._session() as session:
            return list(
                session.exec(select(DriverRow).where(DriverRow.org_id == org_id).order_by(DriverRow.email)).all()
            )

    def organization_by_id(self, org_id: str) -> OrganizationRow | None:
        with self._session() as session:
            return session.get(OrganizationRow, org_id)

    def add_member(self, row: MemberRow) -> bool:
        """Store a new member; False when the email belongs to a member already."""
        with self._session() as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                return False
            return True

    def member(self, member_id: str) -> MemberRow | None:
        with self._session() as session:
            return session.get(MemberRow, member_id)

    def member_by_email(self, email: str) -> MemberRow | None:
        with self._session() as session:
            query = select(MemberRow).where(MemberRow.email == email)
            return session.exec(query).first()

    def member_by_setup(self, digest: str) -> MemberRow | None:
        with self._session() as session:
            query = select(MemberRow).where(MemberRow.setup_digest == digest)
            return session.exec(query).first()

    def members(self, org_id: str) -> list[MemberRow]:
        with self._session() as session:
            query = select(MemberRow).where(MemberRow.org_id == org_id)
            return list(session.exec(query.order_by(MemberRow.email)).all())

    def save_member(self, row: MemberRow) -> None:
        with self._session() as session:
            session.merge(row)
            session.commit()

    def forget_member(self, row: MemberRow) -> None:
        """A removed member's row goes, so the email can be invited again."""
        with self._session() as session:
            found = session.get(MemberRow, row.member_id)
            if found is not None:
                session.delete(found)
                session.commit()

    def add_audit(self, row: AuditRow) -> None:
        with self._session() as session:
            session.add(row)
            session.commit()

    def activity(self, org_id: str, limit: int) -> list[AuditRow]:
        with self._session() as session:
            query = select(AuditRow).where(AuditRow.org_id == org_id)
            return list(session.exec(query.order_by(AuditRow.id.desc()).limit(limit)).all())
