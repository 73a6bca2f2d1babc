"""The CLI talks to the auth admin listener, never to the public one."""

import pytest

from routemate_cli.main import CliSettings


@pytest.mark.parametrize(
    "env, base",
    [
        ({}, "http://127.0.0.1:8091"),
        ({"AUTH_URL": "http://127.0.0.1:38081"}, "http://127.0.0.1:38091"),  # as platform.sh derives AUTH_ADMIN_PORT
        ({"ADMIN_URL": "http://127.0.0.1:8091/", "AUTH_URL": "http://x:1"}, "http://127.0.0.1:8091"),
    ],
)
def test_the_admin_url_is_given_or_derived_from_the_auth_port(monkeypatch, env, base):
    for name in ("ADMIN_URL", "AUTH_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert CliSettings().admin_base == base


@pytest.mark.parametrize(
    "env, base",
    [
        ({}, "http://127.0.0.1:8097"),
        ({"NOTIFIER_URL": "http://127.0.0.1:15087"}, "http://127.0.0.1:15097"),  # NOTIFIER_PORT+10 as platform.sh
        ({"NOTIFIER_ADMIN_URL": "http://n:9/", "NOTIFIER_URL": "http://x:1"}, "http://n:9"),
    ],
)
def test_the_notifier_admin_url_is_given_or_derived_from_the_notifier_port(monkeypatch, env, base):
    for name in ("NOTIFIER_ADMIN_URL", "NOTIFIER_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert CliSettings().notifier_admin_base == base
