import pytest

from shared.errors import Problem, json_pointer
from shared.tokens import Principal, fingerprint, new_token, token_digest, verify_token


def test_pointers_name_the_field_in_the_body():
    assert json_pointer(("body", "stops", 3, "address")) == "/stops/3/address"
    assert json_pointer(("body", "a/b~c")) == "/a~1b~0c"


def test_tokens_carry_256_bits_and_only_their_hash_is_a_key():
    token = new_token()
    assert token.startswith("rm_at_") and len(token) >= 6 + 43
    assert token not in token_digest(token) and len(token_digest(token)) == 64
    assert token_digest(token) != token_digest(new_token())
    assert len(fingerprint(token)) == 12


class FakeRedis:
    def __init__(self, data: dict) -> None:
        self.data = data

    async def hgetall(self, key: str) -> dict:
        return self.data.get(key, {})


async def test_a_stored_token_names_its_integration():
    token = new_token()
    redis = FakeRedis({f"rm:token:{token_digest(token)}": {b"org_id": b"org_1", b"client_id": b"rm_ci_1"}})
    assert await verify_token(redis, f"Bearer {token}") == Principal("org_1", "rm_ci_1")


@pytest.mark.parametrize(
    "header, code",
    [
        (None, "missing_token"),
        ("Basic abc", "invalid_token"),
        ("Bearer not-a-routemate-token", "invalid_token"),
        ("Bearer " + "rm_at_" + "A" * 43, "invalid_token"),  # well-formed but unknown
    ],
)
async def test_bad_tokens_get_401_with_a_bearer_challenge(header, code):
    with pytest.raises(Problem) as err:
        await verify_token(FakeRedis({}), header)
    assert err.value.status == 401 and err.value.code == code
    assert err.value.headers["WWW-Authenticate"].startswith("Bearer")
