"""Reading input files: plain, gzip (possibly multi-member or cut short) or zip (one member)."""

from __future__ import annotations

import glob
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from botclave_cli.errors import DataError, UsageError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
#: what a file under a folder must be called to be taken as a capture
CAPTURE_SUFFIXES = (".gz", ".txt", ".jsonl", ".json", ".log", ".zip")


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


def read_head(path: Path | str, max_bytes: int = 65_536) -> tuple[TextFile, bool]:
    """The complete lines within the first ``max_bytes`` of ``path``'s text, and whether that is
    the whole file (then the text is ``read_text``'s, final line and all)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes)
            whole = not fh.read(1)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if whole:
        return read_text(path), True
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, max_bytes)
        except zlib.error:
            return read_text(path), True  # damaged: the whole read says where
    elif raw[:4] == ZIP_MAGIC:
        return read_text(path), True  # one member, usually small: not worth a partial read
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
    return TextFile(path.name, text[: text.rfind("\n") + 1], False), False


def lines_of(text: str) -> list[str]:
    """Lines of ``text`` without the empty string after a final newline."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def expand_paths(args: Sequence[Path | str], suffixes: Sequence[str]) -> list[Path]:
    """Input files from the command line: files as named, every file under a named folder whose
    name ends with one of ``suffixes`` (hidden ones skipped), the files a glob pattern matches
    (``*``, ``?``, ``[``, ``**``); each file once, in the order met."""
    found: dict[Path, Path] = {}
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            under = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.name.endswith(tuple(suffixes))
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not under:
                raise UsageError(f"{path}: no file ending {'/'.join(suffixes)} under it")
        elif path.is_file():
            under = [path]
        elif any(c in str(arg) for c in "*?["):
            under = [Path(p) for p in sorted(glob.glob(str(arg), recursive=True))]
            under = [p for p in under if p.is_file()]
            if not under:
                raise UsageError(f"{arg}: matches no file")
        else:
            raise UsageError(f"{path}: no such file or folder")
        for p in under:
            found.setdefault(p.resolve(), p)
    return list(found.values())
