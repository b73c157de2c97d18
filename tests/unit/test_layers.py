"""The layers hold at run time too: importing the whole shared core loads no runtime and
no entry point (the import-linter contracts in pyproject.toml check the static imports;
this checks what a real import pulls in, lazy imports and all)."""

from __future__ import annotations

import json
import subprocess
import sys

ABOVE_THE_CORE = ("onewindow_cli", "producers", "stream_apps", "sinks", "counter", "gateway",
                  "onewindow_migrations")
RUNTIME_FRAMEWORKS = ("faust", "aiokafka", "fastapi", "uvicorn", "starlette", "alembic")

PROBE = """
import importlib, json, pkgutil, sys
import onewindow
names = [m.name for m in pkgutil.walk_packages(onewindow.__path__, "onewindow.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"core": names, "loaded": sorted(sys.modules)}))
"""


def test_importing_every_core_module_loads_no_runtime() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, timeout=120)
    report = json.loads(out.stdout)
    assert "onewindow.domain.case" in report["core"] and "onewindow.codec" in report["core"]
    loaded = report["loaded"]
    above = [m for m in loaded if m.split(".")[0] in ABOVE_THE_CORE]
    frameworks = [m for m in loaded if m.split(".")[0] in RUNTIME_FRAMEWORKS]
    assert above == [], above
    assert frameworks == [], frameworks


def test_the_domain_alone_loads_only_the_standard_library() -> None:
    probe = ("import json, sys, pkgutil, importlib, onewindow.domain as d\n"
             "before = set(sys.modules)\n"
             "[importlib.import_module(m.name) for m in pkgutil.walk_packages(d.__path__, "
             "'onewindow.domain.')]\n"
             "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60)
    tops = {m.split(".")[0] for m in json.loads(out.stdout)}
    third_party = {t for t in tops - set(sys.stdlib_module_names) - {"onewindow"}
                   if not t.startswith("_")}
    assert third_party == set(), third_party
