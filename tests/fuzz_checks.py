"""Schemathesis checks (loaded through SCHEMATHESIS_HOOKS): every 4xx is a documented error shape."""

import schemathesis


def _header(response, name: str) -> str:
    value = response.headers.get(name) or response.headers.get(name.title()) or ""
    return value[0] if isinstance(value, list) else value


@schemathesis.check
def errors_are_problem_json(ctx, response, case):
    """4xx answers are problem+json; the token endpoint's are RFC 6749 JSON errors."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = _header(response, "content-type")
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} from {case.path} is not JSON: {response.text[:200]!r}") from None
    if case.path == "/v1/integration-token" and content_type.startswith("application/json"):
        assert "error" in body, f"token endpoint {response.status_code} is not an RFC 6749 error: {response.text[:200]}"
        return None
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} from {case.path} is {content_type!r}, not problem+json"
    )
    assert body.get("code") and body.get("status") == response.status_code, response.text[:200]
    return None
