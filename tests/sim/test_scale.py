"""Scale: memory does not grow with the number of customers, and gzipped event files are
the plain files compressed (same bytes once decompressed, still deterministic)."""

from __future__ import annotations

import gc
import gzip
import tracemalloc
from pathlib import Path

import orjson
import pytest

from tests.sim.conftest import SMALL
from trayecto import sim
from trayecto.kernel import ValidationError
from trayecto.sim import writer


def _sim_bytes(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes still held that the simulator itself allocated (not its bounded clock caches)."""
    return sum(
        s.size
        for s in snapshot.filter_traces(
            (
                tracemalloc.Filter(True, "*/trayecto/sim/*"),
                tracemalloc.Filter(False, "*/trayecto/sim/clock.py"),
            )
        ).statistics("filename")
    )


def test_memory_does_not_grow_with_customers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every line goes to its file at once, so the 256 KiB blocks waiting to be written
    # (bounded, but as large as a small leak) do not hide what is kept per customer.
    monkeypatch.setattr(writer, "_FLUSH_BYTES", 0)
    held: dict[int, int] = {}

    def measure(done: int, _total: int) -> None:
        if done in (300, 1200) and done not in held:
            gc.collect()
            held[done] = _sim_bytes(tracemalloc.take_snapshot())

    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start(1)
    try:
        sim.simulate(tmp_path / "out", customers=1200, days=30, seed=3, on_progress=measure)
    finally:
        if not was_tracing:
            tracemalloc.stop()
    # 900 more customers: a set of one short string per customer would add about 60 KB.
    assert held[1200] - held[300] < 16 * 1024, held


def test_gzipped_events_are_the_plain_files_compressed(small: sim.Manifest, tmp_path: Path) -> None:
    gz = sim.simulate(tmp_path / "gz", **SMALL, compress=1)  # type: ignore[arg-type]
    assert gz.events == small.events
    for plain, packed in zip(small.files, gz.files, strict=True):
        assert packed.path.name == plain.path.name + ".gz"
        assert packed.events == plain.events
        assert gzip.decompress(packed.path.read_bytes()) == plain.path.read_bytes()
    web = next(f for f in gz.files if f.source.key == "web")
    assert (
        web.path.stat().st_size * 5
        < next(f for f in small.files if f.source.key == "web").path.stat().st_size
    )
    for name in ("customers.csv", "orders.csv", "truth/persons.csv", "truth/journeys.csv"):
        assert (gz.root / name).read_bytes() == (small.root / name).read_bytes(), name
    manifest = orjson.loads((gz.root / "manifest.json").read_bytes())
    assert manifest["arguments"]["compress"] == 1
    assert all(s["file"].endswith(".jsonl.gz") for s in manifest["sources"])
    plain_manifest = orjson.loads((small.root / "manifest.json").read_bytes())
    assert "compress" not in plain_manifest["arguments"]

    again = sim.simulate(tmp_path / "again", **SMALL, compress=1)  # type: ignore[arg-type]
    for a, b in zip(gz.files, again.files, strict=True):
        assert a.path.read_bytes() == b.path.read_bytes(), a.path.name


def test_compress_level_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as exc:
        sim.simulate(tmp_path / "x", customers=1, compress=10)
    assert exc.value.field == "compress"
