"""Modules compiled to C with mypyc, and the guard that keeps them in step with their source.

The hot path of order placement is plain, fully typed Python: the sourcing engine, its
exact search, the delivery promise, the snapshot a batch is sourced on and the rows and
view each order writes. ``make install`` compiles the modules of ``COMPILED`` with mypyc
(``scripts/build_native.py``, the same source, no second implementation): each gets a C
extension beside its ``.py``, which Python imports instead of it. Without a compiler, or
with ``TRAYECTO_PURE_PYTHON=1``, nothing is compiled and the ``.py`` files run as they are;
the results are the same, only slower (docs/operations.md).

A compiled module is imported before its source whatever their dates, so an edited source
would silently not run. The build records each source's SHA-256 (``MANIFEST``) and
``check`` (called by ``trayecto.commerce`` before it imports them) refuses a compiled
module whose source has changed since: ``make install`` (or ``make native``) rebuilds it.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
from pathlib import Path

#: package -> its modules compiled with mypyc (one group, one shared library)
COMPILED: dict[str, tuple[str, ...]] = {
    "trayecto.commerce": ("_sourcing", "_optimise", "_promise", "_snapshot", "_rows"),
}
#: the group's shared library: ``src/trayecto_native__mypyc.*.so``
GROUP = "trayecto_native"
ROOT = Path(__file__).resolve().parents[1]  # src/trayecto
MANIFEST = ROOT / "native.json"


class NativeStale(RuntimeError):
    """A compiled module no longer matches its source."""


def source(package: str, module: str) -> Path:
    return ROOT.joinpath(*package.split(".")[1:], module + ".py")


def extensions(path: Path) -> list[Path]:
    """The compiled files of the module whose source is ``path`` (none: pure Python)."""
    found = []
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = path.with_name(path.stem + suffix)
        if candidate.exists():
            found.append(candidate)
    return found


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded() -> dict[str, str]:
    """The sources' digests as of the last build (module -> SHA-256)."""
    try:
        data = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def status(package: str) -> dict[str, str]:
    """Each compiled module of ``package``: ``compiled``, ``python`` (no extension) or
    ``stale`` (an extension built from another version of the source)."""
    built = recorded()
    out = {}
    for module in COMPILED.get(package, ()):
        path = source(package, module)
        if not extensions(path):
            out[module] = "python"
        elif built.get(f"{package}.{module}") == digest(path):
            out[module] = "compiled"
        else:
            out[module] = "stale"
    return out


def check(package: str) -> None:
    """Refuse to go on with a compiled module whose source has changed since it was
    built: the edit would not run."""
    stale = sorted(m for m, s in status(package).items() if s == "stale")
    if stale:
        names = ", ".join(f"{package}.{m}" for m in stale)
        raise NativeStale(
            f"{names}: the compiled module is older than its source; run `make install` "
            "to compile it again (or `make native-clean` to run the source as it is)"
        )


def compiled(package: str) -> bool:
    """Whether every listed module of ``package`` runs compiled."""
    return all(s == "compiled" for s in status(package).values())
