import base64

import pytest

from services.auth.credentials import TokenRequestError, read_credentials
from services.auth.secrets import hash_secret, new_secret, secret_matches

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def basic(cid: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()


def test_the_public_json_body():
    creds = read_credentials(JSON, b'{"client_id": "rm_ci_a", "client_secret": "rm_cs_b"}', None)
    assert (creds.client_id, creds.client_secret) == ("rm_ci_a", "rm_cs_b")


def test_the_rfc6749_form_body():
    creds = read_credentials(FORM, b"grant_type=client_credentials&client_id=rm_ci_a&client_secret=rm_cs_b", None)
    assert creds.client_secret == "rm_cs_b"


def test_http_basic_with_a_form_grant():
    creds = read_credentials(FORM, b"grant_type=client_credentials", basic("rm_ci_a", "rm_cs_b"))
    assert creds.via_basic and creds.client_id == "rm_ci_a"


@pytest.mark.parametrize(
    "ctype, body, auth, error, status",
    [
        (FORM, b"client_id=a&client_secret=b", None, "invalid_request", 400),  # grant_type missing
        (FORM, b"grant_type=password&client_id=a&client_secret=b", None, "unsupported_grant_type", 400),
        (JSON, b'{"client_id": "rm_ci_a"}', None, "invalid_request", 400),
        (JSON, b'{"client_id": 5, "client_secret": "x"}', None, "invalid_request", 400),
        (JSON, b"{not json", None, "invalid_request", 400),
        (JSON, b"[]", None, "invalid_request", 400),
        ("text/plain", b"hello", None, "invalid_request", 415),
        (JSON, b'{"client_id": "' + "\u00e9".encode() * 3 + b'", "client_secret": "x"}', None, "invalid_client", 401),
        (JSON, b'{"client_id": "' + b"a" * 5000 + b'", "client_secret": "x"}', None, "invalid_client", 401),
        (FORM, b"grant_type=client_credentials", "Basic !!!notbase64", "invalid_client", 401),
        (FORM, b"grant_type=client_credentials&client_secret=x", basic("a", "b"), "invalid_request", 400),
    ],
)
def test_every_bad_request_gets_its_rfc6749_error(ctype, body, auth, error, status):
    with pytest.raises(TokenRequestError) as err:
        read_credentials(ctype, body, auth)
    assert (err.value.error, err.value.status) == (error, status)


def test_secrets_are_peppered_hashes_compared_in_constant_time():
    secret = new_secret()
    stored = hash_secret(secret, "pepper-1")
    assert secret not in stored
    assert secret_matches(secret, stored, "pepper-1")
    assert not secret_matches(secret, stored, "pepper-2")  # the table alone verifies nothing
    assert not secret_matches(secret + "x", stored, "pepper-1")
    assert not secret_matches(secret, None, "pepper-1")
