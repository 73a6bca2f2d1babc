"""Endpoint signing secrets at rest: AES-GCM under a key the notifier holds (they must stay
usable to sign, so a hash will not do)."""

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_AAD = b"routemate-webhook-secret-v1"


class SecretBox:
    def __init__(self, key_material: str) -> None:
        # A 256-bit key from whatever string the operator configured.
        self._aead = AESGCM(hashlib.sha256(key_material.encode()).digest())

    def seal(self, secret: str) -> str:
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, secret.encode(), _AAD)).decode()

    def open(self, sealed: str) -> str:
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], _AAD).decode()
