"""Reading input files: plain, gzip (possibly multi-member or cut short) or zip (one member)."""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from botclave_cli.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class TextFile:
    """The decoded text of one input file, and whether its end was cut off."""

    name: str
    text: str
    #: the last line may be incomplete: no final newline, or the compressed stream ends early
    truncated_tail: bool


def _gunzip(raw: bytes) -> tuple[bytes, bool]:
    """Decompress every gzip member; returns (data, complete)."""
    out: list[bytes] = []
    while raw:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out.append(d.decompress(raw))
        except zlib.error:
            return b"".join(out), False
        if not d.eof:
            return b"".join(out), False
        raw = d.unused_data
        if raw[:2] != GZIP_MAGIC:
            break
    return b"".join(out), True


def _unzip(path: Path) -> bytes:
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if len(members) != 1:
                raise DataError(
                    f"{path.name}: expected one file in the zip archive, found {len(members)}"
                )
            return zf.read(members[0])
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DataError(f"{path.name}: unreadable zip archive ({exc})") from None


def read_text(path: Path | str) -> TextFile:
    """Read ``path`` as UTF-8 text (undecodable bytes become U+FFFD and fail later checks)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    complete = True
    if raw[:2] == GZIP_MAGIC:
        raw, complete = _gunzip(raw)
    elif raw[:4] == ZIP_MAGIC:
        raw = _unzip(path)
    text = raw.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    truncated = bool(text) and (not complete or not text.endswith("\n"))
    return TextFile(path.name, text, truncated)


def lines_of(text: str) -> list[str]:
    """Lines of ``text`` without the empty string after a final newline."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines
