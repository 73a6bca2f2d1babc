"""Crypto-shredding of the personal fields of job events (shared/pii.py)."""

import asyncio
import json

from shared import pii
from shared.events import JobCancelled, StopStatusChanged, decode_event
from shared.events.jobs import Depot, VehicleSpec
from shared.events.stops import ProofOfDelivery
from shared.testing.builders import import_requested, stop, stop_changed
from shared.testing.fakes import CountingRedis, MemoryRedis

KEK = "a-test-key-encryption-key-of-some-length"


def _job():
    return import_requested(
        stop(
            0,
            "1 Secret Lane, Brisbane",
            label="Mrs Private",
            notes="gate 1234",
            phone="+61400000000",
            email="p@example.com",
        ),
        stop(1, lat=-27.4, lng=153.0),
        depot=Depot(address="9 Depot Road"),
        title="Round of Mrs Private",
        driver_email="driver@example.com",
    )


def test_the_log_carries_no_personal_field_in_clear_and_the_key_opens_them_again():
    keys = pii.DataKeys(MemoryRedis(), KEK)
    event = _job()
    sealed = asyncio.run(keys.seal(event))
    wire = sealed.to_bytes().decode()
    for secret in (
        "Secret Lane",
        "Mrs Private",
        "gate 1234",
        "+61400000000",
        "p@example.com",
        "Depot Road",
        "driver@example.com",
    ):
        assert secret not in wire
    decoded = decode_event(sealed.to_bytes())
    assert decoded.schema_version == 2
    (opened,) = asyncio.run(keys.open_all([decoded]))
    assert opened == event  # every field back, the ids and the rest untouched


def test_an_erased_jobs_events_open_as_erased_and_other_jobs_are_untouched():
    keys = pii.DataKeys(MemoryRedis(), KEK)
    mine, other = _job(), import_requested(stop(0, "2 Kept Street"), job_id="k")
    sealed = [asyncio.run(keys.seal(mine)), asyncio.run(keys.seal(other))]
    asyncio.run(keys.destroy(["j"]))
    opened = asyncio.run(keys.open_all(sealed))
    assert opened[0].job.stops[0].address == pii.ERASED and opened[0].job.title == pii.ERASED
    assert opened[0].job.stops[1].lat == -27.4  # coordinates and ids are not sealed
    assert opened[1].job.stops[0].address == "2 Kept Street"
    assert pii.erased(sealed[0], None) and not pii.erased(sealed[1], b"k" * 32)


def test_a_value_sealed_for_one_job_does_not_open_as_another_jobs():
    key = b"k" * 32
    token = pii.seal_text(key, "job-a", "address")
    assert pii.open_text(key, "job-a", token) == "address"
    assert pii.open_text(key, "job-b", token) == pii.ERASED


def test_stop_reports_and_cancellations_seal_their_free_text_and_proof():
    keys = pii.DataKeys(MemoryRedis(), KEK)
    report = stop_changed(
        0,
        "completed",
        notes="left with Bob",
        reason="door code 99",
        proof=ProofOfDelivery(recipient_name="Bob", signature_url="https://x/s.png", photo_urls=("https://x/p.png",)),
    )
    cancel = JobCancelled(org_id="o", job_id="j", reason="customer Bob moved")
    sealed = [asyncio.run(keys.seal(report)), asyncio.run(keys.seal(cancel))]
    wire = b"".join(e.to_bytes() for e in sealed).decode()
    assert "Bob" not in wire and "x/s.png" not in wire and "door code" not in wire
    assert asyncio.run(keys.open_all(sealed)) == [report, cancel]


def test_a_version_1_event_in_plaintext_still_decodes_and_opens_as_it_was():
    raw = json.loads(stop_changed(0, "failed", notes="dog").to_bytes())
    raw["schema_version"] = 1
    old = decode_event(json.dumps(raw).encode())
    assert isinstance(old, StopStatusChanged) and old.schema_version == 2
    assert pii.open_event(old, None).notes == "dog"


def test_a_data_key_wrapped_under_another_kek_reads_as_gone():
    redis = MemoryRedis()
    asyncio.run(pii.DataKeys(redis, KEK).key_for("j"))
    assert asyncio.run(pii.DataKeys(redis, KEK + "-other").keys(["j"])) == {"j": None}


def test_no_stage_can_make_an_erased_job_a_fresh_key():
    """A stop report published a moment after the erasure must not seal its notes under a new key."""
    keys = pii.DataKeys(MemoryRedis(), KEK)
    asyncio.run(keys.key_for("j"))
    asyncio.run(keys.destroy(["j"]))
    late = asyncio.run(keys.seal(stop_changed(0, "completed", notes="left with Bob")))
    assert late.notes == pii.ERASED and asyncio.run(keys.key_for("j")) is None


def test_the_driver_directory_is_sealed_under_its_organizations_key():
    from shared.events import DriverRegistered

    keys = pii.DataKeys(MemoryRedis(), KEK)
    joined = DriverRegistered(org_id="o1", email="dana@example.com", name="Dana")
    sealed = asyncio.run(keys.seal(joined))
    assert b"dana@example.com" not in sealed.to_bytes() and b"Dana" not in sealed.to_bytes()
    assert asyncio.run(keys.open_all([sealed])) == [joined]
    asyncio.run(keys.destroy([pii.org_subject("o1")]))
    assert asyncio.run(keys.open_all([sealed]))[0].email == pii.ERASED


def test_the_replay_opener_opens_raw_events_as_open_event_does_with_one_key_read_per_job():
    """The rebuild opens events in their raw dicts before it validates them, and reads each job's
    key once for the whole replay: the outcome is the one `open_event` gives, erased jobs included."""
    redis = CountingRedis()
    keys = pii.DataKeys(redis, KEK)
    from shared.events import DriverRegistered, decode_raw

    mine, other = _job(), import_requested(stop(0, "2 Kept Street"), job_id="k")
    report = stop_changed(
        0,
        "completed",
        notes="left with Bob",
        proof=ProofOfDelivery(recipient_name="Bob", signature_url="https://x/s.png", photo_urls=("https://x/p.png",)),
    )
    joined = DriverRegistered(org_id="o1", email="dana@example.com", name="Dana")
    plain = stop_changed(1, "failed", notes="written before sealing", job_id="k")  # clear text passes as it is
    sealed = [asyncio.run(keys.seal(e)) for e in (mine, other, report, joined)] + [plain]
    asyncio.run(keys.destroy(["k"]))  # `other` erased
    raws = [json.loads(e.to_bytes()) for e in sealed]
    opener = pii.Opener(keys)
    redis.mgets = 0
    asyncio.run(opener.prefetch(raws))
    asyncio.run(opener.prefetch(raws))  # the next batch's events of the same jobs: no read
    assert redis.mgets == 1
    opened = [decode_raw(opener.open_raw(raw)) for raw in raws]
    assert opened[0] == mine and opened[2] == report and opened[3] == joined and opened[4] == plain
    assert opened[1].job.stops[0].address == pii.ERASED
    expected = [pii.open_event(e, asyncio.run(keys.keys([pii.job_of(e)]))[pii.job_of(e)]) for e in sealed]
    assert opened == expected


def test_sealing_copies_the_models_into_an_event_that_decodes_as_published_and_opens_as_it_was():
    key = b"k" * 32
    fleet = (
        VehicleSpec(driver_email="ann@example.com", start=Depot(address="3 Start St"), end=Depot(lat=-27.0, lng=153.0)),
        VehicleSpec(driver_email="bob@example.com"),
    )
    event = _job().model_copy(update={"job": _job().job.model_copy(update={"vehicles": fleet})})
    sealed = pii.seal_event(event, key)
    wire = sealed.to_bytes()
    assert not any(s in wire.decode() for s in ("ann@example.com", "bob@example.com", "Start St", "Secret Lane"))
    assert decode_event(wire) == sealed  # the copy is exactly what a consumer reads back
    assert sealed.job.stops[1] is event.job.stops[1]  # a stop without personal text is not copied
    assert pii.seal_event(sealed, key) == sealed  # a sealed value is never sealed twice
    assert pii.open_event(decode_event(wire), key) == event


def test_a_primed_data_key_saves_one_round_trip_once():
    redis = MemoryRedis()
    keys = pii.DataKeys(redis, KEK)
    blob = keys.wrap.wrap("j", keys.new_key())
    keys.prime("j", blob)
    redis.down = True  # the primed key needs no Redis
    assert asyncio.run(keys.key_for("j")) == keys.wrap.unwrap("j", blob)
    redis.down = False
    assert asyncio.run(keys.key_for("j")) != keys.wrap.unwrap("j", blob)  # taken once: then Redis's (none yet)


def _cached_keys(redis=None, seconds=5.0, size=100):
    return pii.DataKeys(redis or MemoryRedis(), KEK, cache_seconds=seconds, cache_size=size)


def test_a_stage_reads_a_jobs_key_once_to_open_its_event_and_seal_what_comes_of_it():
    redis = CountingRedis()
    keys, job = _cached_keys(redis), _job()
    sealed = asyncio.run(keys.seal(job))  # the key is made (and read) once
    redis.down = True  # from here on, no Redis: opening and sealing again take the cached key
    opened, erased = asyncio.run(keys.open(decode_event(sealed.to_bytes())))
    assert not erased and opened == job
    assert asyncio.run(keys.seal(opened)).job.title.startswith(pii.TOKEN)


def test_without_a_cache_every_seal_asks_redis():
    redis = MemoryRedis()
    keys = pii.DataKeys(redis, KEK)
    asyncio.run(keys.seal(_job()))
    redis.down = True
    try:
        asyncio.run(keys.seal(_job()))
    except ConnectionError:
        return
    raise AssertionError("a key was served from memory with the cache off")


def test_an_erasure_in_this_process_is_never_outlived_by_a_cached_key():
    redis = MemoryRedis()
    keys = _cached_keys(redis)
    sealed = asyncio.run(keys.seal(_job()))
    asyncio.run(keys.destroy(["j"]))
    redis.down = True  # what the process knows decides: the job is erased, no Redis needed
    assert asyncio.run(keys.key_for("j")) is None
    opened, erased = asyncio.run(keys.open(sealed))
    assert erased and opened.job.title == pii.ERASED
    assert asyncio.run(keys.seal(_job())).job.title == pii.ERASED  # nothing new is sealed for it


def test_a_jobs_erasure_seen_on_the_log_drops_its_cached_key_at_once():
    redis = MemoryRedis()
    keys, elsewhere = _cached_keys(redis), pii.DataKeys(redis, KEK)
    sealed = asyncio.run(keys.seal(_job()))
    asyncio.run(elsewhere.destroy(["j"]))  # another process erased it
    keys.forget(["j"])  # ... and this one consumed its JobErased
    assert asyncio.run(keys.key_for("j")) is None
    assert asyncio.run(keys.open(sealed))[1]


def test_an_erasure_this_process_did_not_see_reaches_it_within_the_cache_seconds(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(pii.time, "monotonic", lambda: now[0])
    redis = MemoryRedis()
    keys, elsewhere = _cached_keys(redis, seconds=5.0), pii.DataKeys(redis, KEK)
    asyncio.run(keys.seal(_job()))
    asyncio.run(elsewhere.destroy(["j"]))
    now[0] += 4.9
    assert asyncio.run(keys.key_for("j")) is not None  # within the documented bound: still the read key
    now[0] += 0.1
    assert asyncio.run(keys.key_for("j")) is None  # the read aged out: Redis says erased
    now[0] += 3600
    assert asyncio.run(keys.keys(["j"])) == {"j": None}  # and it stays erased


def test_a_key_read_while_its_job_is_erased_is_not_kept():
    redis = MemoryRedis()
    keys = _cached_keys(redis)
    asyncio.run(pii.DataKeys(redis, KEK).key_for("j"))  # the job has a key in Redis
    real_mget = redis.mget

    async def slow_mget(names, *args):  # the erasure lands while the read is on its way
        blobs = await real_mget(names, *args)
        await keys.destroy(["j"])
        return blobs

    redis.mget = slow_mget
    assert asyncio.run(keys.keys(["j"]))["j"] is not None  # the read itself raced the erasure
    redis.mget, redis.down = real_mget, True
    assert asyncio.run(keys.key_for("j")) is None  # but it was not kept


def test_the_cache_holds_at_most_its_size_least_recently_used_out():
    redis = MemoryRedis()
    keys = _cached_keys(redis, size=2)
    for job_id in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" comes
        asyncio.run(keys.key_for(job_id))
    assert len(keys._cache) == 2
    redis.down = True
    assert asyncio.run(keys.key_for("a")) and asyncio.run(keys.key_for("c"))
    try:
        asyncio.run(keys.key_for("b"))
    except ConnectionError:
        return
    raise AssertionError("the least recently used key was kept beyond the bound")


def test_every_sealed_value_has_a_nonce_of_its_own_across_values_events_and_pool_refills():
    """The nonces come from the OS in batches (one getrandom per 64): none may repeat under a key,
    within an event, across events, or across a batch's end."""
    key = b"k" * 32
    many = import_requested(*(stop(i, f"{i} Long Street", label=f"L{i}", notes=f"n{i}") for i in range(40)))
    seen: list[bytes] = []
    for event in (many, many, _job()):
        sealed = pii.seal_event(event, key)
        for value in pii.personal_values(sealed):
            seen.append(pii.base64.urlsafe_b64decode(value[len(pii.TOKEN) :])[:12])
        assert pii.open_event(sealed, key) == event
    assert len(seen) > 2 * 64 + 1  # more than two pools' worth
    assert len(set(seen)) == len(seen)
