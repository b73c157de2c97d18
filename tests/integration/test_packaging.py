"""A real package: a non-editable `pip install` into a fresh virtualenv, run from a
directory that is not the checkout, gives a working `onewindow` (schemas, data files and
migrations are package data; nothing is looked up beside the source tree)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests import REPO_ROOT

pytestmark = pytest.mark.integration

ROUNDTRIP = """
import json, sys
from onewindow.codec import get_codec
import onewindow.codec.registry as registry
codec = get_codec()
event = json.loads(sys.stdin.readline())
record = codec.from_json(event)
data = codec.encode(record)
back = codec.to_json(codec.decode(data))
print(json.dumps({"same": back == codec.to_json(record), "bytes": len(data),
                  "schemas": registry.default_schema_dir().as_posix(),
                  "header": data[:2].hex()}))
"""


def _copy_tracked(dst: Path) -> None:
    """The files git tracks, as a fresh clone has them (no .venv, no caches)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=REPO_ROOT, capture_output=True,
                           check=True).stdout.split(b"\0")
    for raw in filter(None, files):
        rel = raw.decode()
        src = REPO_ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def test_a_non_editable_install_in_a_fresh_virtualenv_works(tmp_path: Path) -> None:
    src, venv, elsewhere = tmp_path / "src", tmp_path / "venv", tmp_path / "elsewhere"
    _copy_tracked(src)
    elsewhere.mkdir()
    # no pip or setuptools of its own: the build tools come from the test environment
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    py = venv / "bin" / "python"
    # The dependencies come from this test run's own environment (a .pth line puts its
    # site-packages on the new venv's path), so the test needs no network; the project
    # itself is built into a wheel and installed for real, not in editable mode.
    site = Path(sysconfig.get_paths()["purelib"])
    new_site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig."
                                    "get_paths()['purelib'])"], capture_output=True,
                                   text=True, check=True).stdout.strip())
    (new_site / "deps-from-test-env.pth").write_text(f"{site}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEWINDOW_")}
    env["PYTHONNOUSERSITE"] = "1"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps",
                        "--no-build-isolation", str(src)], cwd=elsewhere, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    installed = subprocess.run([str(py), "-c", "import onewindow, onewindow_cli, schemas; "
                                "print(onewindow.__file__)"], cwd=elsewhere, env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
    assert Path(installed).is_relative_to(new_site), installed  # not the checkout's copy

    onewindow = venv / "bin" / "onewindow"
    for argv in (["--help"], ["produce", "--help"], ["up", "--help"]):
        r = subprocess.run([str(onewindow), *argv], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (argv, r.stderr[-2000:])
    assert "produce" in subprocess.run([str(onewindow), "--help"], cwd=elsewhere, env=env,
                                       capture_output=True, text=True).stdout

    event = (REPO_ROOT / "tests" / "examples" / "restaurant-case.jsonl").read_text(
        "utf-8").splitlines()[0]
    r = subprocess.run([str(py), "-c", ROUNDTRIP], input=event + "\n", cwd=elsewhere,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout)
    assert result["same"] is True
    assert result["header"] == "c301"  # Avro single-object encoding marker
    assert Path(result["schemas"]).is_relative_to(new_site)

    # the packaged department registry, calendar override and migrations are there too
    probe = ("from onewindow.departments import load_registry; "
             "from onewindow.calendar_source import DEFAULT_OVERRIDE_FILE; "
             "import sinks.migrations as m, pathlib; "
             "print(len(load_registry().codes), DEFAULT_OVERRIDE_FILE.is_file(), "
             "len(list((pathlib.Path(m.__file__).parent / 'versions').glob('*.py'))))")
    r = subprocess.run([str(py), "-c", probe], cwd=elsewhere, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    codes, override, migrations = r.stdout.split()
    assert int(codes) > 0 and override == "True" and int(migrations) >= 1
