"""A settled job's outcome is kept packed in Redis (most of the durable instance's memory) and read
back by any ingest replica: what was kept plain before packing still reads, and nothing kept can
unpack into more than the bound."""

import zlib

from shared.channels import OUTCOME_MAX_BYTES, JobSettled, pack_outcome, unpack_outcome


def test_an_outcome_unpacks_to_the_json_it_was_and_is_a_fraction_of_it():
    view = {"stops": [{"address": f"{n} Bench St", "lat": -27.36 - n / 1000, "status": "pending"} for n in range(20)]}
    json = JobSettled(job_id="j", org_id="o", job=view).model_dump_json()
    kept = pack_outcome(json)
    assert JobSettled.model_validate_json(unpack_outcome(kept)).job == view
    assert len(kept) < len(json) / 3


def test_json_kept_before_packing_and_nothing_kept_read_as_they_are():
    assert unpack_outcome(b'{"job_id": "j"}') == b'{"job_id": "j"}'
    assert unpack_outcome('{"job_id": "j"}') == '{"job_id": "j"}'
    assert unpack_outcome(None) is None


def test_what_would_unpack_past_the_bound_is_not_an_outcome():
    bomb = zlib.compress(b"\0" * (OUTCOME_MAX_BYTES + 1), 9)  # about 64 KiB kept
    assert unpack_outcome(bomb) is None
    assert unpack_outcome(zlib.compress(b"\0" * 1000)[:-4]) is None  # cut short
    assert unpack_outcome(b"\x78garbage") is None
