"""Personal data in the event log, sealed per job (crypto-shredding).

The log is append-only and kept for ever (shared/topics.py), so erasing a job cannot mean
rewriting it. Instead every personal field of a job's events travels sealed (AES-256-GCM) under
a data key of that job alone; the data keys live in the durable Redis, each wrapped under the
key-encryption key (DATA_KEY_ENCRYPTION_KEY). Erasing the job destroys its data key: every copy
of its personal fields (the topics, their replicas, a snapshot, a backup of any of them) turns
into ciphertext nobody can open, which is what `open_event` then reports as erased.

Which fields are personal is listed once, in PERSONAL below (and in the README).
"""

import base64
import functools
import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel
from redis.asyncio import Redis

from shared.events import Event

TOKEN = "pii1."  # a sealed value: "pii1." + base64url(nonce ‖ ciphertext ‖ tag)
JSON_TOKEN = "pii1j."  # a sealed JSON value (a whole object, as a webhook's job view)
ERASED = "[erased]"  # what a sealed value opens as once its job's data key is gone
_SPEC = (
    ("job", "title"),
    ("job", "driver_email"),
    ("job", "stops", "*", "address"),
    ("job", "stops", "*", "label"),
    ("job", "stops", "*", "notes"),
    ("job", "stops", "*", "phone"),
    ("job", "stops", "*", "email"),
    ("job", "depot", "address"),
    ("job", "vehicles", "*", "driver_email"),  # a fleet's drivers, and where they start and end (often home)
    ("job", "vehicles", "*", "start", "address"),
    ("job", "vehicles", "*", "end", "address"),
)
# event_type -> the paths of its personal string fields ("*": every item of a sequence).
PERSONAL: dict[str, tuple[tuple[str, ...], ...]] = {
    "ImportRequested": _SPEC,
    "StopsGeocoded": _SPEC,
    "StopStatusChanged": (
        ("reason",),
        ("notes",),
        ("proof", "recipient_name"),
        ("proof", "signature_url"),
        ("proof", "photo_urls", "*"),
    ),
    "JobCancelled": (("reason",),),
    "RouteOptimized": (("routes", "*", "driver_email"),),  # copied sealed from the import by the optimizer
    "DriverRegistered": (("email",), ("name",)),
    "DriverRemoved": (("email",),),
    "JobChanged": (("data",),),  # the public job view a webhook carries, sealed whole
}


def data_key_name(job_id: str) -> str:
    """Where a job's wrapped data key is kept in the durable Redis."""
    return f"rm:datakey:{job_id}"


def _aad(job_id: str) -> bytes:
    return b"rm-pii-v1:" + job_id.encode()  # a value sealed for one job never opens as another's


def _encrypt(key: bytes, job_id: str, data: bytes) -> bytes:
    """nonce ‖ ciphertext ‖ tag: `data` under the job's data key, bound to the job."""
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, data, _aad(job_id))


def seal_text(key: bytes, job_id: str, text: str) -> str:
    """`text` sealed under the job's data key."""
    return TOKEN + base64.urlsafe_b64encode(_encrypt(key, job_id, text.encode())).decode()


def seal_json(key: bytes, job_id: str, value: Any) -> str:
    """A JSON value (an object) sealed whole under the job's data key."""
    # orjson: the same compact JSON as json.dumps(separators=(",", ":")) at a thirtieth of the time
    # (a 20-stop job view, sealed for every change the status relay publishes).
    text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    return JSON_TOKEN + base64.urlsafe_b64encode(_encrypt(key, job_id, text)).decode()


BLOB = b"pii1b."  # sealed bytes kept outside the log: BLOB + nonce ‖ ciphertext ‖ tag


def seal_bytes(key: bytes, job_id: str, data: bytes) -> bytes:
    """`data` sealed under the job's data key, as bytes (a Redis value, not JSON text)."""
    return BLOB + _encrypt(key, job_id, data)


def open_bytes(key: bytes | None, job_id: str, blob: bytes) -> bytes | None:
    """What `seal_bytes` sealed; None when the job's key is gone (erased) or does not open it."""
    if key is None or not blob.startswith(BLOB):
        return None
    body = blob[len(BLOB) :]
    try:
        return AESGCM(key).decrypt(body[:12], body[12:], _aad(job_id))
    except (InvalidTag, ValueError):  # another key or job, or cut short
        return None


def open_text(key: bytes | None, job_id: str, value: str) -> Any:
    """The plaintext of a sealed value (a sealed JSON value parsed); ERASED when the key is gone
    (or does not fit); a value that is not sealed (written before sealing) as it is."""
    if not is_sealed(value):
        return value
    return _open_with(AESGCM(key) if key is not None else None, _aad(job_id), value)


def _open_with(cipher: AESGCM | None, aad: bytes, value: str) -> Any:
    as_json = value.startswith(JSON_TOKEN)
    if not (as_json or value.startswith(TOKEN)):
        return value
    if cipher is None:
        return ERASED
    raw = base64.urlsafe_b64decode(value[len(JSON_TOKEN if as_json else TOKEN) :])
    try:
        text = cipher.decrypt(raw[:12], raw[12:], aad).decode()
    except InvalidTag:
        return ERASED
    return orjson.loads(text) if as_json else text


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith((TOKEN, JSON_TOKEN))


def _rewrite(event: Event, change: Callable[[Any], Any]) -> Event:
    """The event with `change` applied to its personal values, copying only the models on the way
    to a changed value: no dump and re-validation of the whole event (a 20-stop import's was most
    of the cost of opening one, twice over when `personal_values` looked for sealed fields first)."""
    if event.event_type not in PERSONAL:
        return event
    return _apply(event, _tree(event.event_type), change)


def job_of(event: Event) -> str | None:
    """Whose data key seals the event's personal fields: its job's, or for the driver directory
    its organization's ("org:<org_id>", destroyed when the organization is erased)."""
    if event.event_type not in PERSONAL:
        return None
    return getattr(event, "job_id", None) or f"{ORG_SUBJECT}{event.org_id}"


ORG_SUBJECT = "org:"


def org_subject(org_id: str) -> str:
    return f"{ORG_SUBJECT}{org_id}"


def seal_event(event: Event, key: bytes) -> Event:
    """The event with its personal fields sealed under the job's data key (sealed ones stay as they are).

    On the models themselves, copying only what changes: no dump and re-validation of the whole
    event (an import's is most of its fields), which is what the publish path would pay."""
    job_id = job_of(event)
    if job_id is None or event.event_type not in PERSONAL:
        return event
    aead, aad = AESGCM(key), _aad(job_id)
    nonces = _nonces()

    def seal(value: Any) -> Any:
        if isinstance(value, dict):
            return seal_json(key, job_id, value)
        if is_sealed(value):
            return value
        nonce = next(nonces)
        return TOKEN + base64.urlsafe_b64encode(nonce + aead.encrypt(nonce, value.encode(), aad)).decode()

    return _apply(event, _tree(event.event_type), seal)


def _nonces(batch: int = 64) -> Iterator[bytes]:
    """Fresh random 96-bit nonces, drawn from the OS `batch` at a time: a 20-stop import seals
    about sixty values, and a getrandom system call for each took 13 % of its sealing (111 against
    97 µs). Each call of this gets draws of its own (never shared between events or threads), so a
    nonce is never used twice."""
    while True:
        pool = os.urandom(12 * batch)
        for start in range(0, len(pool), 12):
            yield pool[start : start + 12]


@functools.cache
def _tree(event_type: str) -> dict[str, Any]:
    """PERSONAL's paths of one event type as a tree (None: a personal value)."""
    tree: dict[str, Any] = {}
    for path in PERSONAL[event_type]:
        node = tree
        for head in path[:-1]:
            node = node.setdefault(head, {})
        node[path[-1]] = None
    return tree


def _apply(node: Any, tree: dict[str, Any] | None, change: Callable[[Any], Any]) -> Any:
    """`node` with `change` applied to the string (or dict) values at the tree's leaves; models and
    containers on the way are copied only where something changed."""
    if node is None:
        return None
    if tree is None:
        return change(node) if isinstance(node, str | dict) else node
    if "*" in tree:
        if not isinstance(node, list | tuple):
            return node
        items = [_apply(item, tree["*"], change) for item in node]
        return node if all(a is b for a, b in zip(items, node, strict=True)) else type(node)(items)
    if isinstance(node, BaseModel):
        update = {}
        fields = node.__dict__
        for name, sub in tree.items():
            value = fields.get(name)
            if value is None:
                continue
            if sub is None:  # a personal value of this model: changed here, one call fewer per value
                new = change(value) if isinstance(value, str | dict) else value
            else:
                new = _apply(value, sub, change)
            if new is not value:
                update[name] = new
        return _replaced(node, update) if update else node
    if isinstance(node, dict):
        return {k: _apply(v, tree[k], change) if k in tree else v for k, v in node.items()}
    return node


def _replaced(model: BaseModel, update: dict[str, Any]) -> BaseModel:
    """model.model_copy(update=update) for fields the model declares (the tree's names are its
    field names): the same shallow copy without pydantic's generic path (three copy.copy calls and
    a config lookup per model; an import's seal copies 22 models)."""
    if model.__pydantic_private__ is not None or model.__pydantic_extra__:
        return model.model_copy(update=update)
    cls = type(model)
    new = cls.__new__(cls)
    object.__setattr__(new, "__dict__", {**model.__dict__, **update})
    object.__setattr__(new, "__pydantic_extra__", None if model.__pydantic_extra__ is None else {})
    object.__setattr__(new, "__pydantic_fields_set__", model.__pydantic_fields_set__ | update.keys())
    object.__setattr__(new, "__pydantic_private__", None)
    return new


def personal_values(event: Event) -> list[str]:
    """The personal field values the event carries (sealed or not): what a test looks for."""
    found: list[str] = []

    def keep(text: str) -> str:
        found.append(text)
        return text

    _rewrite(event, keep)
    return found


def open_event(event: Event, key: bytes | None) -> Event:
    """The event with its personal fields in plaintext, or ERASED where its key is gone."""
    job_id = job_of(event)
    if job_id is None:
        return event
    # One cipher and one AAD for all of the event's values (open_text makes them per value: a
    # 20-stop import has about 100 personal values, and the cipher was a third of opening it).
    cipher, aad = (AESGCM(key) if key is not None else None), _aad(job_id)
    return _rewrite(event, lambda value: _open_with(cipher, aad, value) if isinstance(value, str) else value)


def erased(event: Event, key: bytes | None) -> bool:
    """Whether the event holds sealed personal data that can no longer be opened."""
    return key is None and any(is_sealed(v) for v in personal_values(event))


class KeyWrap:
    """Wraps data keys under the key-encryption key, so a copy of Redis alone opens nothing."""

    def __init__(self, kek_material: str) -> None:
        self._aead = AESGCM(hashlib.sha256(kek_material.encode()).digest())

    def wrap(self, job_id: str, key: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, key, b"rm-datakey-v1:" + job_id.encode())

    def unwrap(self, job_id: str, blob: bytes) -> bytes | None:
        try:
            return self._aead.decrypt(blob[:12], blob[12:], b"rm-datakey-v1:" + job_id.encode())
        except InvalidTag:
            return None  # wrapped under another key-encryption key: unreadable, as if erased


ERASED_MARK = b"erased"  # what stays of a destroyed data key: no key can be made for the job again


class DataKeys:
    """The jobs' data keys in the durable Redis: made at import, read to open, destroyed at erase.

    Destroying overwrites the key with ERASED_MARK instead of deleting it, so a stage that
    publishes for the job a moment after its erasure cannot make it a fresh key (it seals
    ERASED instead): an erased job never regains readable personal data.

    With `cache_seconds` > 0, the unwrapped keys this process read are kept in memory for at most
    that long after the read (never refreshed by use), at most `cache_size` of them (least recently
    used first out): a job's events pass a stage within seconds, so opening an import and sealing
    what comes of it, or sealing a job's three changes, read its key from Redis once instead of
    once per event. Erasure wins over the cache:
    - `destroy` (this process erases) and `forget` (this process saw the job's JobErased or
      job.erased change) drop the key at once and remember the job as erased, so no key of it is
      served again here, not even one whose Redis read was in flight during the erasure;
    - an erasure made by another process that this one has not seen yet reaches it within
      `cache_seconds` at most (the key's read ages out), the bound the README documents.
    Keys are held only in memory, never logged."""

    PRIMED_MAX = 1024

    def __init__(self, redis: Redis, kek_material: str, *, cache_seconds: float = 0.0, cache_size: int = 0) -> None:
        self.redis, self.wrap = redis, KeyWrap(kek_material)
        self._primed: dict[str, bytes] = {}
        self.cache_seconds, self.cache_size = cache_seconds, cache_size if cache_seconds > 0 else 0
        # job -> (key or None when erased, monotonic time it was read); in LRU order
        self._cache: OrderedDict[str, tuple[bytes | None, float]] = OrderedDict()
        self._erasures = 0  # how many erasures this process made or saw: a read that spans one is not kept

    @classmethod
    def from_settings(cls, redis: Redis, settings: Any) -> "DataKeys":
        """The data keys of a stage that opens and seals job events, with its in-process cache."""
        return cls(
            redis,
            settings.kek_material,
            cache_seconds=settings.data_key_cache_seconds,
            cache_size=settings.data_key_cache_size,
        )

    @staticmethod
    def new_key() -> bytes:
        return AESGCM.generate_key(256)

    def prime(self, job_id: str, blob: bytes) -> None:
        """The job's wrapped key as stored, just read by the caller in a round trip of its own (ingest
        makes it with the job's reservation): the next key_for(job_id) takes it instead of asking
        Redis again. Taken once; a few at most are ever waiting (bounded anyway)."""
        if len(self._primed) >= self.PRIMED_MAX:
            self._primed.pop(next(iter(self._primed)))
        self._primed[job_id] = blob

    def _unwrap(self, job_id: str, blob: bytes | None) -> bytes | None:
        return None if blob is None or blob == ERASED_MARK else self.wrap.unwrap(job_id, blob)

    def _cached(self, job_id: str) -> tuple[bool, bytes | None]:
        """(found, key) from the in-process cache; an entry older than cache_seconds is dropped."""
        if not self.cache_size:
            return False, None
        entry = self._cache.get(job_id)
        if entry is None:
            return False, None
        key, read_at = entry
        if key is not None and time.monotonic() - read_at >= self.cache_seconds:
            del self._cache[job_id]
            return False, None
        self._cache.move_to_end(job_id)
        return True, key

    def _keep(self, job_id: str, key: bytes | None, erasures: int, read_at: float) -> None:
        """Cache a key read from Redis at `read_at`, unless an erasure came in while it was read
        (it may be the erased job's: only a fresh read after the erasure is kept)."""
        if not self.cache_size or erasures != self._erasures:
            return
        current = self._cache.get(job_id)
        if current is not None and current[0] is None:
            return  # known erased here: an erased job has no key again
        self._cache[job_id] = (key, read_at)
        self._cache.move_to_end(job_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def forget(self, job_ids: Iterable[str]) -> None:
        """These jobs were erased (here or, as a JobErased says, elsewhere): their keys leave the
        cache at once and the jobs are remembered as erased (as long as the LRU bound allows)."""
        self._erasures += 1
        for job_id in job_ids:
            self._primed.pop(job_id, None)
            if self.cache_size:
                self._cache[job_id] = (None, time.monotonic())
                self._cache.move_to_end(job_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def key_for(self, job_id: str) -> bytes | None:
        """The job's data key, made now if it never had one; None once the job was erased."""
        found, key = self._cached(job_id)
        if found:
            return key
        if (primed := self._primed.pop(job_id, None)) is not None:
            key = self._unwrap(job_id, primed)
            self._keep(job_id, key, self._erasures, time.monotonic())
            return key
        erasures, read_at = self._erasures, time.monotonic()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(data_key_name(job_id), self.wrap.wrap(job_id, self.new_key()), nx=True)
            pipe.get(data_key_name(job_id))
            _, blob = await pipe.execute()
        key = self._unwrap(job_id, blob)
        self._keep(job_id, key, erasures, read_at)
        return key

    async def keys(self, job_ids: Iterable[str]) -> dict[str, bytes | None]:
        """Each job's data key, None where it was destroyed (the job was erased)."""
        ids = sorted(set(job_ids))
        if not ids:
            return {}
        found: dict[str, bytes | None] = {}
        missing = []
        for job_id in ids:
            hit, key = self._cached(job_id)
            if hit:
                found[job_id] = key
            else:
                missing.append(job_id)
        if missing:
            erasures, read_at = self._erasures, time.monotonic()
            blobs = await self.redis.mget([data_key_name(j) for j in missing])
            for job_id, blob in zip(missing, blobs, strict=True):
                found[job_id] = key = self._unwrap(job_id, blob)
                if blob is not None:  # a job with no key yet may get one: not cached as None
                    self._keep(job_id, key, erasures, read_at)
        return found

    async def destroy(self, job_ids: Iterable[str]) -> None:
        """Erase: every personal field ever sealed under these jobs' keys becomes unreadable."""
        job_ids = list(job_ids)
        self.forget(job_ids)  # before the write: no read of this process keeps the old key from here on
        if names := [data_key_name(j) for j in job_ids]:
            await self.redis.mset(dict.fromkeys(names, ERASED_MARK))
        self.forget(job_ids)  # and after it: a read that began before is not kept either

    async def seal(self, event: Event) -> Event:
        """The event as it may be published: its personal fields sealed under its job's key (made
        now if the job has none: its import, or a job imported before sealing); an erased job's
        event carries ERASED where its personal fields were."""
        job_id = job_of(event)
        if job_id is None:
            return event
        key = await self.key_for(job_id)
        if key is None:
            return _rewrite(event, lambda value: value if is_sealed(value) else ERASED)
        return seal_event(event, key)

    async def open(self, event: Event) -> tuple[Event, bool]:
        """The event opened, and whether its job was erased (its sealed fields could not be opened)."""
        job_id = job_of(event)
        if job_id is None:
            return event, False
        key = (await self.keys([job_id]))[job_id]
        return open_event(event, key), erased(event, key)

    async def open_all(self, events: list[Event]) -> list[Event]:
        """The events with their personal fields opened (ERASED where the job was erased); one Redis call."""
        # Only the jobs whose events hold sealed values need their keys (no Redis call otherwise).
        keys = await self.keys(
            j for e in events if (j := job_of(e)) is not None and any(map(is_sealed, personal_values(e)))
        )
        return [open_event(e, keys.get(j)) if (j := job_of(e)) is not None else e for e in events]


def _visit(node: Any, tree: dict[str, Any], change: Callable[[str], Any]) -> None:
    """Every personal string under `node` changed in place (`_apply` on raw JSON, in place)."""
    if isinstance(node, dict):
        for step, below in tree.items():
            if step in node and (value := node[step]) is not None:
                if below is None:
                    if isinstance(value, str):
                        node[step] = change(value)
                else:
                    _visit(value, below, change)
    elif isinstance(node, list) and "*" in tree:
        below = tree["*"]
        for i, item in enumerate(node):
            if below is None:
                if isinstance(item, str):
                    node[i] = change(item)
            elif item is not None:
                _visit(item, below, change)


class Opener:
    """Opens the sealed personal fields of raw events (parsed JSON, before validation) in one
    walk, for a replay of many events: each job's data key is read from Redis once (`prefetch`,
    one MGET for the subjects not seen yet) and kept as a ready cipher, instead of a Redis call
    and a cipher per event and a dump and re-validation of every event (`DataKeys.open_all`).
    Same outcome as `open_event`: plaintext, ERASED where the key is gone, clear text as it is."""

    def __init__(self, keys: DataKeys, cached: int = 200_000) -> None:
        self.keys, self.cached = keys, cached
        self._ciphers: dict[str, AESGCM | None] = {}

    @staticmethod
    def subject(raw: dict[str, Any]) -> str | None:
        """As `job_of`, on the raw event."""
        if raw.get("event_type") not in PERSONAL:
            return None
        return raw.get("job_id") or f"{ORG_SUBJECT}{raw.get('org_id')}"

    async def prefetch(self, raws: Iterable[dict[str, Any]]) -> None:
        """The data keys of the raw events' jobs not cached yet, in one Redis call."""
        missing = {s for raw in raws if (s := self.subject(raw)) is not None and s not in self._ciphers}
        if not missing:
            return
        if len(self._ciphers) + len(missing) > self.cached:  # a bound on memory: a replay moves on in time
            self._ciphers.clear()
        for subject, key in (await self.keys.keys(missing)).items():
            self._ciphers[subject] = AESGCM(key) if key is not None else None

    def open_raw(self, raw: dict[str, Any]) -> dict[str, Any]:
        """`raw` with its personal fields opened in place (its keys prefetched)."""
        subject = self.subject(raw)
        if subject is None:
            return raw
        cipher, aad = self._ciphers.get(subject), _aad(subject)
        _visit(raw, _tree(raw["event_type"]), lambda value: _open_with(cipher, aad, value))
        return raw


class SealingBus:
    """An EventBus that seals the personal fields of what it publishes (everything else is the
    bus's own): the services publish plain events and never forget to seal one."""

    def __init__(self, bus: Any, keys: DataKeys) -> None:
        self.bus, self.keys = bus, keys

    async def publish(self, event: Event) -> None:
        await self.bus.publish(await self.keys.seal(event))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bus, name)
