"""The vendored Apache ECharts (ops/vendor_echarts.py, `make vendor-echarts`): the committed
files are the pinned version's, and the script refuses a tarball whose SHA-512 is not the
pinned integrity. No network: the tarball of the refusal and extraction checks is built
here."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests import REPO_ROOT

SCRIPT = REPO_ROOT / "ops" / "vendor_echarts.py"
_spec = importlib.util.spec_from_file_location("vendor_echarts", SCRIPT)
assert _spec is not None and _spec.loader is not None
vendor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vendor)


def _tarball(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_the_committed_files_are_the_pinned_version() -> None:
    assert vendor.check() == []
    source = json.loads((vendor.TARGET / "SOURCE.json").read_text("utf-8"))
    assert source["tarball"] == vendor.TARBALL and source["version"] == vendor.VERSION
    assert (vendor.TARGET / "echarts.esm.min.js").stat().st_size > 500_000
    assert "Apache License" in (vendor.TARGET / "LICENSE").read_text("utf-8")
    # the page imports exactly this file
    page = (REPO_ROOT / "counter" / "static" / "supervision.js").read_text("utf-8")
    assert 'from "./vendor/echarts/echarts.esm.min.js"' in page
    r = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "as pinned" in r.stdout, r.stderr


def test_a_tarball_of_another_integrity_is_refused(tmp_path: Path) -> None:
    files = {"package/dist/echarts.esm.min.js": b"export const x = 1;\n",
             "package/LICENSE": b"Apache License\n", "package/NOTICE": b"Apache ECharts\n"}
    tgz = _tarball(files)
    with pytest.raises(vendor.VendorError, match="integrity mismatch"):
        vendor.extract(tgz, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    # the same bytes pinned: written, with their hashes, and checked as such
    hashes = vendor.extract(tgz, tmp_path / "ok", integrity=vendor.sri(tgz))
    assert (tmp_path / "ok" / "echarts.esm.min.js").read_bytes() == b"export const x = 1;\n"
    source = json.loads((tmp_path / "ok" / "SOURCE.json").read_text("utf-8"))
    assert source["sha256"] == hashes and source["integrity"] == vendor.sri(tgz)
    (tmp_path / "ok" / "NOTICE").write_bytes(b"changed\n")
    assert any("NOTICE is not the file" in p for p in vendor.check(tmp_path / "ok"))
    # a member missing: refused, whatever the integrity
    partial = _tarball({"package/LICENSE": b"x"})
    with pytest.raises(vendor.VendorError, match="not in the tarball"):
        vendor.extract(partial, tmp_path / "partial", integrity=vendor.sri(partial))
