#!/usr/bin/env python3
"""Vendor Apache ECharts into the counter app's static assets (``make vendor-echarts``).

The supervisor view (``/supervision``) draws its charts with Apache ECharts, served by the
app itself: no CDN, so the view works on a machine without Internet and under the pages'
``Content-Security-Policy`` (``script-src 'self'``). The files are committed; this script
is how they got there, and how they are replaced when the pin below moves:

1. downloads the pinned version's tarball from the npm registry (the URL ``npm`` itself
   fetches, ``dist.tarball`` of ``https://registry.npmjs.org/echarts/<version>``),
2. refuses it unless its SHA-512 is the pinned ``dist.integrity`` (Subresource Integrity
   form, as in a ``package-lock.json``),
3. writes the ES-module build ``dist/echarts.esm.min.js`` with ``LICENSE`` and ``NOTICE``
   (Apache-2.0 asks for both) into ``counter/static/vendor/echarts/``, and ``SOURCE.json``:
   package, version, tarball, integrity and the SHA-256 of every file written.

``--check`` downloads nothing: it verifies that the committed files are the ones
``SOURCE.json`` names and that ``SOURCE.json`` is of the pinned version (a unit test runs
the same check). To move to another version: look up its ``dist.integrity``
(``npm view echarts@X.Y.Z dist.integrity``), change ``VERSION`` and ``INTEGRITY``, run
``make vendor-echarts``, run the browser tests, commit the four files.

Standard library only; exit 0 done, 1 a download or integrity failure, 2 a check that
fails.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

PACKAGE = "echarts"
VERSION = "6.1.0"
#: ``dist.integrity`` of echarts@6.1.0 in the npm registry
INTEGRITY = ("sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4y"
             "vBYkOkbk6HIVpIyHZA==")
TARBALL = f"https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"
#: member of the tarball -> file name in the vendor directory
FILES = {"package/dist/echarts.esm.min.js": "echarts.esm.min.js",
         "package/LICENSE": "LICENSE",
         "package/NOTICE": "NOTICE"}
ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "counter" / "static" / "vendor" / "echarts"
#: a tarball is a dozen megabytes; more than this is not the package
MAX_BYTES = 64 * 1024 * 1024


class VendorError(Exception):
    """The tarball or the vendored files are not what the pin says."""


def sri(data: bytes) -> str:
    """Subresource Integrity (SHA-512) of ``data``, as npm's ``dist.integrity``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def download(url: str = TARBALL, timeout: float = 60.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - a fixed https URL
        data = r.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise VendorError(f"{url}: more than {MAX_BYTES} bytes")
    return data


def extract(tarball: bytes, target: Path, *, integrity: str = INTEGRITY,
            version: str = VERSION, url: str = TARBALL) -> dict[str, str]:
    """Check ``tarball`` against ``integrity``, write :data:`FILES` and ``SOURCE.json``
    into ``target``; returns file name -> SHA-256. Raises :class:`VendorError` (nothing
    written) when the integrity differs or a file is missing."""
    got = sri(tarball)
    if got != integrity:
        raise VendorError(f"integrity mismatch: the tarball is {got}, the pin is {integrity}")
    contents: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member, name in FILES.items():
            try:
                f = tar.extractfile(member)
            except KeyError:
                f = None
            if f is None:
                raise VendorError(f"{member} is not in the tarball")
            contents[name] = f.read()
    target.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for name, data in contents.items():
        (target / name).write_bytes(data)
        hashes[name] = hashlib.sha256(data).hexdigest()
    source = {"package": PACKAGE, "version": version, "tarball": url,
              "integrity": integrity, "sha256": hashes}
    (target / "SOURCE.json").write_text(json.dumps(source, indent=2) + "\n", "utf-8")
    return hashes


def check(target: Path = TARGET) -> list[str]:
    """What is wrong with the vendored files (``[]``: they are the pinned version's)."""
    problems = []
    try:
        source = json.loads((target / "SOURCE.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{target / 'SOURCE.json'}: {exc}"]
    if (source.get("package"), source.get("version"), source.get("integrity")) != \
            (PACKAGE, VERSION, INTEGRITY):
        problems.append(f"SOURCE.json is {source.get('package')}@{source.get('version')}, "
                        f"the pin is {PACKAGE}@{VERSION}: run make vendor-echarts")
    for name in FILES.values():
        path = target / name
        want = source.get("sha256", {}).get(name)
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != want:
            problems.append(f"{path} is not the file SOURCE.json names")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true",
                   help="verify the committed files, download nothing")
    args = p.parse_args(argv)
    if args.check:
        problems = check()
        for line in problems:
            sys.stderr.write(f"vendor-echarts: {line}\n")
        if not problems:
            sys.stdout.write(f"vendor-echarts: {PACKAGE}@{VERSION} in "
                             f"{TARGET.relative_to(ROOT)} is as pinned\n")
        return 2 if problems else 0
    try:
        hashes = extract(download(), TARGET)
    except (OSError, VendorError, tarfile.TarError) as exc:
        sys.stderr.write(f"vendor-echarts: {TARBALL}: {exc}\n")
        return 1
    for name, digest in hashes.items():
        sys.stdout.write(f"{TARGET.relative_to(ROOT) / name}  sha256 {digest}\n")
    sys.stdout.write(f"vendor-echarts: {PACKAGE}@{VERSION} ({INTEGRITY[:20]}...) vendored\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
