"""Reading client credentials from a token request: JSON (public docs), form or HTTP Basic (RFC 6749)."""

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote_plus

from shared.inputs import InvalidJson, parse_json

MAX_ID_LENGTH = 200


class TokenRequestError(Exception):
    """An RFC 6749 §5.2 error: `error` code, description and HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str
    via_basic: bool


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise TokenRequestError("invalid_client", "Malformed HTTP Basic credentials.", 401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise TokenRequestError("invalid_client", "Malformed HTTP Basic credentials.", 401)
    return unquote_plus(client_id), unquote_plus(secret)


def _fields(content_type: str, body: bytes) -> dict[str, object]:
    media = content_type.split(";")[0].strip().lower()
    if not body:
        return {}
    if media == "application/json" or media.endswith("+json"):
        try:
            data = parse_json(body)
        except InvalidJson as exc:
            raise TokenRequestError("invalid_request", f"The request body is not accepted: {exc.reason}") from None
        if not isinstance(data, dict):
            raise TokenRequestError("invalid_request", "The request body must be a JSON object.")
        return data
    if media == "application/x-www-form-urlencoded":
        try:
            parsed = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise TokenRequestError("invalid_request", "The form body must be ASCII URL-encoded.") from None
        if any(len(v) > 1 for v in parsed.values()):
            raise TokenRequestError("invalid_request", "A parameter was repeated.")
        return {k: v[0] for k, v in parsed.items()}
    raise TokenRequestError("invalid_request", "Send application/json or application/x-www-form-urlencoded.", 415)


def read_credentials(content_type: str, body: bytes, authorization: str | None) -> ClientCredentials:
    """Client credentials from any of the three accepted forms, or a TokenRequestError."""
    fields = _fields(content_type, body)
    grant = fields.get("grant_type")
    is_form = content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded"
    if grant is None and is_form:
        raise TokenRequestError("invalid_request", "grant_type is required.")
    if grant is not None and grant != "client_credentials":
        raise TokenRequestError("unsupported_grant_type", "Only grant_type=client_credentials is supported.")
    basic = _basic(authorization) if authorization else None
    if basic and ("client_secret" in fields):
        raise TokenRequestError("invalid_request", "Use one way to send client credentials, not two.")
    client_id, secret = basic or (fields.get("client_id"), fields.get("client_secret"))
    for name, value in (("client_id", client_id), ("client_secret", secret)):
        if value is None or value == "":
            raise TokenRequestError("invalid_request", f"{name} is required.")
        if not isinstance(value, str):
            raise TokenRequestError("invalid_request", f"{name} must be a string.")
        if len(value) > MAX_ID_LENGTH or not value.isascii() or not value.isprintable():
            raise TokenRequestError("invalid_client", "Client authentication failed.", 401)
    return ClientCredentials(client_id, secret, via_basic=basic is not None)  # type: ignore[arg-type]
