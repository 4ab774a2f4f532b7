"""Ids: UUIDv7, standard ``uuid.UUID`` objects, strictly increasing within a process."""

from __future__ import annotations

import itertools
import pickle
import uuid

from trayecto.kernel import new_id


def test_new_ids_are_standard_uuid7_in_creation_order() -> None:
    ids = [new_id() for _ in range(50_000)]
    assert all(type(i) is uuid.UUID and i.version == 7 for i in ids)
    assert all(a < b for a, b in itertools.pairwise(ids))
    sample = ids[123]
    assert uuid.UUID(str(sample)) == sample
    assert hash(uuid.UUID(sample.hex)) == hash(sample)
    # The importer's worker processes send ids back pickled.
    assert pickle.loads(pickle.dumps(sample)) == sample  # noqa: S301 (our own bytes)
    assert sample.is_safe is uuid.SafeUUID.unknown
