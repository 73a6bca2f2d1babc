"""Test layers: everything over the real stack is marked `e2e`, the rest runs offline.

`make test-unit` runs `-m "not e2e"` in a network namespace with nothing reachable; a test
that needs Kafka, Redis, PostgreSQL or nginx of the platform must carry the mark, which it
gets here from where it lives (tests/e2e, tests/faults) or from the fixtures it uses.
"""

import pytest

REAL_STACK_DIRS = ("tests/e2e/", "tests/faults/")
REAL_STACK_FIXTURES = {"platform", "postgres_url"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = str(config.rootpath) + "/"
    for item in items:
        where = str(item.path).removeprefix(root)
        if where.startswith(REAL_STACK_DIRS) or REAL_STACK_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.e2e)
