"""The placing path compiled with mypyc (``trayecto.kernel.native``): it is what runs, it
computes what its source computes, and a compiled module older than its source is refused."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from trayecto.commerce import _sourcing
from trayecto.commerce._model import Capability, LocationType, Method
from trayecto.kernel import native

PURE = os.environ.get("TRAYECTO_PURE_PYTHON") == "1"


def test_the_placing_path_runs_compiled() -> None:
    """``make install`` compiled every listed module and Python imports the compiled one
    (``TRAYECTO_PURE_PYTHON=1`` builds none: then every one runs from its source)."""
    for package, modules in native.COMPILED.items():
        want = "python" if PURE else "compiled"
        assert native.status(package) == dict.fromkeys(modules, want)
        for module in modules:
            loaded = sys.modules.get(f"{package}.{module}") or importlib.import_module(
                f"{package}.{module}"
            )
            suffix = "".join(Path(str(loaded.__file__)).suffixes)
            assert (suffix in importlib.machinery.EXTENSION_SUFFIXES) is not PURE, suffix


def test_a_compiled_module_older_than_its_source_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(native, "ROOT", tmp_path)
    monkeypatch.setattr(native, "MANIFEST", tmp_path / "native.json")
    monkeypatch.setattr(native, "COMPILED", {"trayecto.pkg": ("_hot",)})
    src = tmp_path / "pkg" / "_hot.py"
    src.parent.mkdir()
    src.write_text("def f() -> int:\n    return 1\n")
    assert native.status("trayecto.pkg") == {"_hot": "python"}
    native.check("trayecto.pkg")  # nothing compiled: the source runs

    src.with_name("_hot" + importlib.machinery.EXTENSION_SUFFIXES[0]).write_bytes(b"\x7fELF")
    (tmp_path / "native.json").write_text(json.dumps({"trayecto.pkg._hot": native.digest(src)}))
    assert native.status("trayecto.pkg") == {"_hot": "compiled"}
    native.check("trayecto.pkg")

    src.write_text("def f() -> int:\n    return 2\n")  # edited after the build
    assert native.status("trayecto.pkg") == {"_hot": "stale"}
    with pytest.raises(native.NativeStale, match=r"trayecto\.pkg\._hot.*make install"):
        native.check("trayecto.pkg")


def _from_source(name: str) -> ModuleType:
    """The module ``trayecto.commerce.<name>`` loaded from its ``.py`` under another name
    (its imports still take the compiled modules)."""
    path = native.source("trayecto.commerce", name)
    spec = importlib.util.spec_from_file_location(f"_pure_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def _plan(mod: Any, rng: random.Random) -> Any:
    types = [t for t in LocationType if t is not LocationType.PICKUP_POINT]
    sites = [
        mod.Site(
            id=f"L{i:02d}",
            type=rng.choice(types),
            latitude=rng.uniform(36, 43.5),
            longitude=rng.uniform(-8.5, 3),
            capabilities=frozenset({Capability.SHIP, Capability.CLICK_AND_COLLECT}),
            capacity_left=rng.choice([None, None, 0, 5]),
        )
        for i in range(rng.randint(1, 30))
    ]
    skus = [f"S{k}" for k in rng.sample(range(40), rng.randint(1, 5))]
    demand = {s: rng.randint(1, 4) for s in skus}
    available = {(site.id, s): q for site in sites for s in skus if (q := rng.randint(0, 6)) > 0}
    policy = mod.Policy(allow_split=rng.random() < 0.8, max_locations=rng.randint(1, 4))
    try:
        return mod.source(
            demand,
            sites,
            available,
            method=Method.DELIVERY,
            policy=policy,
            destination=(rng.uniform(36, 43.5), rng.uniform(-8.5, 3)),
        )
    except Exception as exc:  # the same refusal is part of agreeing
        return (type(exc).__name__, str(exc))


def test_the_compiled_engine_chooses_as_its_source_does() -> None:
    """Random orders over up to 30 locations (splits, capacity, shops' walk-in reserve,
    refusals): the compiled engine and its source give the same plan, cost and
    explanation."""
    pure = _from_source("_sourcing")
    for seed in range(400):
        a, b = _plan(_sourcing, random.Random(seed)), _plan(pure, random.Random(seed))
        if isinstance(a, tuple):
            assert a == b, seed
            continue
        assert (a.cost, a.explanation) == (b.cost, b.explanation), seed
        assert [(x.location_id, x.sku, x.quantity) for x in a.assignments] == [
            (x.location_id, x.sku, x.quantity) for x in b.assignments
        ], seed
