"""Material files for tests: a valid PDF of any number of pages and any size, written by
hand (objects, cross-reference table, trailer) in pieces, so a 50 MB scan is made without
holding it in memory. The bulk is one content stream of random bytes: unique per file,
and pypdf never reads it to count pages."""

from __future__ import annotations

import os
from pathlib import Path

CHUNK = 1 << 20


def write_pdf(path: Path, *, pages: int = 1, payload_bytes: int = 0) -> Path:
    """A PDF of ``pages`` blank A4 pages whose first page's content stream holds
    ``payload_bytes`` random bytes; returns ``path``."""
    offsets: list[int] = []
    with path.open("wb") as fh:
        def obj(body: bytes) -> None:
            offsets.append(fh.tell())
            fh.write(f"{len(offsets)} 0 obj\n".encode() + body + b"\nendobj\n")

        fh.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        page_ids = [4 + i for i in range(pages)]
        obj(b"<< /Type /Catalog /Pages 2 0 R >>")
        kids = " ".join(f"{i} 0 R" for i in page_ids).encode()
        obj(b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(pages).encode() + b" >>")
        # 3: the content stream of the first page, with the payload
        offsets.append(fh.tell())
        fh.write(f"3 0 obj\n<< /Length {payload_bytes} >>\nstream\n".encode())
        left = payload_bytes
        while left:
            n = min(CHUNK, left)
            fh.write(os.urandom(n))
            left -= n
        fh.write(b"\nendstream\nendobj\n")
        for i in range(pages):
            contents = b" /Contents 3 0 R" if i == 0 else b""
            obj(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]" + contents + b" >>")
        xref = fh.tell()
        fh.write(f"xref\n0 {len(offsets) + 1}\n0000000000 65535 f \n".encode())
        for off in offsets:
            fh.write(f"{off:010d} 00000 n \n".encode())
        fh.write(f"trailer\n<< /Size {len(offsets) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
                 "%%EOF\n".encode())
    return path
