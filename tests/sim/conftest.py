"""Simulated retailers shared by the simulator tests (generated once per worker)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from trayecto import sim

SMALL = {"customers": 200, "days": 30, "seed": 11}
LARGE = {"customers": 2000, "days": 60, "seed": 5}


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> sim.Manifest:
    return sim.simulate(tmp_path_factory.mktemp("small"), **SMALL)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def large(tmp_path_factory: pytest.TempPathFactory) -> sim.Manifest:
    return sim.simulate(tmp_path_factory.mktemp("large"), **LARGE)  # type: ignore[arg-type]


def rows(root: Path, name: str) -> list[dict[str, str]]:
    with (root / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def messages(m: sim.Manifest) -> Iterator[tuple[sim.EventFile, dict[str, Any]]]:
    for f in m.files:
        for line in f.path.read_bytes().splitlines():
            yield f, orjson.loads(line)
