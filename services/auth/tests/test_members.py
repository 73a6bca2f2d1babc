"""Console members through the admin listener: the operator's first admin, set-up links, sign-in
behind the lockout, roles, the console's organization-scoped internal API and the activity."""

import sqlite3
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from services.auth.adapters.schema import migrate
from services.auth.adapters.store import AuthStore
from services.auth.passwords import password_matches, setup_digest
from services.auth.settings import LOCAL_ADMIN_TOKEN
from shared.db import make_engine
from shared.settings import LOCAL_INTERNAL_TOKEN

ADMIN = {"Authorization": f"Bearer {LOCAL_ADMIN_TOKEN}"}
INTERNAL = {"Authorization": f"Bearer {LOCAL_INTERNAL_TOKEN}"}
PASSWORD = "correct horse battery staple"


def first_admin(auth, org: str = "acme", **over) -> dict:
    answer = auth.admin.post("/admin/v1/members", json={"org": org, "email": "Ada@Example.com", **over}, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_the_operator_adds_an_admin_with_a_set_up_link_kept_only_as_a_digest(auth, store):
    added = first_admin(auth)
    assert added["role"] == "admin" and added["active"] is False and added["email"] == "ada@example.com"
    row = store.member(added["member_id"])
    assert row.setup_digest == setup_digest(added["setup_token"]) and added["setup_token"] not in str(row)
    assert (row.setup_expires_at - row.created_at) == pytest.approx(timedelta(hours=72), abs=timedelta(seconds=5))
    used = auth.admin.post("/internal/v1/setup", json={"token": added["setup_token"], "password": PASSWORD},
                           headers=INTERNAL)  # fmt: skip
    assert used.status_code == 200 and used.json()["active"] is True
    row = store.member(added["member_id"])
    assert row.password_hash.startswith("$argon2id$") and password_matches(PASSWORD, row.password_hash)
    again = auth.admin.post("/internal/v1/setup", json={"token": added["setup_token"], "password": PASSWORD},
                            headers=INTERNAL)  # fmt: skip
    assert again.status_code == 404 and again.json()["code"] == "setup_link_invalid"
    assert {"MemberInvited", "MemberPasswordSet"} <= set(auth.types())


def test_sign_in_answers_alike_for_unknown_emails_and_wrong_passwords_then_locks(auth):
    first_admin(auth, password=PASSWORD)
    sign_in = lambda email, pw: auth.admin.post(  # noqa: E731
        "/internal/v1/sign-in", json={"email": email, "password": pw, "address": "203.0.113.9"}, headers=INTERNAL
    )
    ok = sign_in("ADA@example.com", PASSWORD)
    assert ok.status_code == 200 and ok.json()["org"] == "acme"
    unknown, wrong = sign_in("nobody@example.com", PASSWORD), sign_in("ada@example.com", "nope")
    assert (unknown.status_code, wrong.status_code) == (401, 401) and unknown.json() == wrong.json()
    codes = [sign_in("ada@example.com", "nope").status_code for _ in range(3)]  # threshold 3 in these settings
    assert codes[-1] == 429
    assert sign_in("ada@example.com", PASSWORD).status_code == 429
    assert "MemberSignedIn" in auth.types()


def test_the_internal_api_needs_the_internal_token_not_the_admin_one(auth):
    assert auth.admin.get("/internal/v1/orgs/org_x/members").status_code == 401
    assert auth.admin.get("/internal/v1/orgs/org_x/members", headers=ADMIN).status_code == 401
    assert (
        auth.admin.post("/admin/v1/members", json={"org": "a", "email": "a@b.co"}, headers=INTERNAL).status_code == 401
    )


def test_roles_change_the_last_admin_stays_and_another_organization_sees_nothing(auth):
    admin = first_admin(auth, password=PASSWORD)
    org = admin["org_id"]
    invited = auth.admin.post(f"/internal/v1/orgs/{org}/members", json={"email": "dev@example.com", "role": "developer",
                              "actor": "ada@example.com"}, headers=INTERNAL)  # fmt: skip
    assert invited.status_code == 201 and invited.json()["setup_token"].startswith("rm_setup_")
    dup = auth.admin.post(f"/internal/v1/orgs/{org}/members", json={"email": "DEV@example.com", "role": "viewer"},
                          headers=INTERNAL)  # fmt: skip
    assert dup.status_code == 409
    demote = auth.admin.post(f"/internal/v1/orgs/{org}/members/{admin['member_id']}/role", json={"role": "viewer"},
                             headers=INTERNAL)  # fmt: skip
    assert demote.status_code == 409 and demote.json()["code"] == "last_admin"
    other = first_admin(auth, org="globex", email="gus@example.com")
    dev_id = invited.json()["member_id"]
    stolen = auth.admin.post(f"/internal/v1/orgs/{other['org_id']}/members/{dev_id}/remove", json={},
                             headers=INTERNAL)  # fmt: skip
    assert stolen.status_code == 404
    promoted = auth.admin.post(f"/internal/v1/orgs/{org}/members/{dev_id}/role", json={"role": "admin"},
                               headers=INTERNAL)  # fmt: skip
    assert promoted.json()["role"] == "admin"
    activity = auth.admin.get(f"/internal/v1/orgs/{org}/activity", headers=INTERNAL).json()["activity"]
    assert [a["event_type"] for a in activity][:2] == ["MemberRoleChanged", "MemberInvited"]
    assert activity[1]["actor"] == "ada@example.com"
    assert (
        auth.admin.get(f"/internal/v1/orgs/{other['org_id']}/activity", headers=INTERNAL)
        .json()["activity"][0]["subject"]
        .startswith("gus@")
    )


def test_integrations_through_the_console_are_scoped_to_the_organization(auth):
    mine, theirs = first_admin(auth)["org_id"], first_admin(auth, org="globex", email="g@example.com")["org_id"]
    made = auth.admin.post(f"/internal/v1/orgs/{mine}/integrations", json={"name": "ERP", "actor": "ada@example.com"},
                           headers=INTERNAL)  # fmt: skip
    assert made.status_code == 201 and made.json()["client_secret"]
    client_id = made.json()["client_id"]
    for action, body in (("rotate", {"grace_seconds": 0}), ("revoke", {})):
        refused = auth.admin.post(f"/internal/v1/orgs/{theirs}/integrations/{client_id}/{action}", json=body,
                                  headers=INTERNAL)  # fmt: skip
        assert refused.status_code == 404
    assert auth.admin.get(f"/internal/v1/orgs/{theirs}/integrations", headers=INTERNAL).json()["integrations"] == []
    token = auth.client.post("/v1/integration-token", json={"client_id": client_id,
                                                            "client_secret": made.json()["client_secret"]})  # fmt: skip
    assert token.status_code == 200
    listed = auth.admin.get(f"/internal/v1/orgs/{mine}/integrations", headers=INTERNAL).json()["integrations"]
    assert listed[0]["last_used_at"] is not None and "secret" not in str(listed)


def test_the_migrations_build_the_tables_and_upgrade_a_create_all_database(tmp_path):
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as db:  # the tables as the create_all code of the previous release made them
        db.executescript(
            "CREATE TABLE auth_organizations (org_id VARCHAR NOT NULL PRIMARY KEY, name VARCHAR NOT NULL,"
            " created_at DATETIME NOT NULL);"
            "INSERT INTO auth_organizations VALUES ('org_1', 'acme', '2026-01-01 00:00:00');"
        )
    store = AuthStore(make_engine(f"sqlite:///{old}"))
    assert store.organization("acme", False).org_id == "org_1"
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    migrate(engine)
    migrate(engine)  # a no-op the second time

    def ours(obj, name, kind, reflected, compare_to) -> bool:
        table = name if kind == "table" else obj.table.name
        return table.startswith("auth_") and "alembic" not in table

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": ours, "compare_type": True})
        assert list(compare_metadata(context, SQLModel.metadata)) == []
