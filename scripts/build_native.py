"""Compile the modules of ``trayecto.kernel.native.COMPILED`` with mypyc, in place.

Run by ``make install`` (``make native``) after the project and its dev extras (mypy, which
carries mypyc) are installed. Each module gets a C extension beside its ``.py``
(``src/trayecto/commerce/_sourcing.cpython-311-x86_64-linux-gnu.so``) and the group shares
``src/trayecto_native__mypyc.*.so``; ``src/trayecto/native.json`` records the sources'
digests for ``native.check``. ``--clean`` (or ``TRAYECTO_PURE_PYTHON=1``) removes them all,
so the sources run as they are.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from trayecto.kernel import native  # noqa: E402

BUILD = REPO / "build" / "native"


def _outputs() -> list[Path]:
    found = [p for p in (REPO / "src").glob(f"{native.GROUP}__mypyc.*") if p.is_file()]
    for package, modules in native.COMPILED.items():
        for module in modules:
            found += native.extensions(native.source(package, module))
    return found


def clean() -> None:
    for path in _outputs():
        path.unlink()
    native.MANIFEST.unlink(missing_ok=True)


def build() -> None:
    import shutil
    import sysconfig
    import warnings

    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if shutil.which(compiler) is None or not headers.exists():
        missing = f"the C compiler {compiler!r}" if shutil.which(compiler) is None else headers
        sys.exit(
            f"cannot compile the placing path: {missing} is missing. Install it (Debian: "
            "apt-get install gcc python3-dev), or set TRAYECTO_PURE_PYTHON=1 to run it as "
            "plain Python (the same results, slower order intake)."
        )

    from mypyc.build import mypycify
    from setuptools import setup

    # setuptools reads pyproject.toml's [tool.setuptools] here too, and calls it beta
    warnings.filterwarnings("ignore", message=r"Support for `\[tool.setuptools\]`")

    clean()
    sources = [
        native.source(package, module)
        for package, modules in native.COMPILED.items()
        for module in modules
    ]
    os.chdir(REPO)  # mypy reads its settings from pyproject.toml
    started = time.monotonic()
    extensions = mypycify(
        [str(p.relative_to(REPO)) for p in sources],
        opt_level="3",
        target_dir=str(BUILD / "c"),
        group_name=native.GROUP,
    )
    setup(
        name="trayecto-native",
        package_dir={"": "src"},
        ext_modules=extensions,
        script_args=[
            "--quiet",
            "build_ext",
            "--inplace",
            "--build-temp",
            str(BUILD / "temp"),
            "--build-lib",
            str(BUILD / "lib"),
        ],
    )
    digests = {
        f"{package}.{module}": native.digest(native.source(package, module))
        for package, modules in native.COMPILED.items()
        for module in modules
    }
    native.MANIFEST.write_text(json.dumps(digests, indent=2, sort_keys=True) + "\n")
    names = ", ".join(digests)
    print(f"compiled with mypyc in {time.monotonic() - started:.0f} s: {names}")


def main() -> None:
    if "--clean" in sys.argv[1:] or os.environ.get("TRAYECTO_PURE_PYTHON") == "1":
        clean()
        print("native modules removed: trayecto runs as pure Python")
        return
    build()


if __name__ == "__main__":
    main()
