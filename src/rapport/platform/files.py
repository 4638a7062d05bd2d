"""Opening data files the way importers need: plain, gzip or zip, recognised by content (exports
get renamed), with a clear error for archives that hold nothing usable."""

from __future__ import annotations

import codecs
import gzip
import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


def open_decompressed(
    stack: ExitStack,
    path: Path,
    *,
    fail: Callable[[str], Exception],
    suffixes: tuple[str, ...] = (".csv",),
) -> tuple[IO[bytes], IO[bytes] | gzip.GzipFile]:
    """The file's raw bytes (for progress by position) and its decompressed content. In a zip,
    the first member with the earliest of ``suffixes`` is read. Everything opened is closed
    with ``stack``; problems are raised as ``fail(reason)``."""
    raw = stack.enter_context(path.open("rb"))
    magic = raw.read(4)
    raw.seek(0)
    if magic.startswith(GZIP_MAGIC):
        return raw, stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
    if not magic.startswith(ZIP_MAGIC):
        return raw, raw
    try:
        archive = stack.enter_context(zipfile.ZipFile(raw))
    except zipfile.BadZipFile as error:
        raise fail(f"not a readable zip archive ({error})") from error
    members = sorted(
        (
            info
            for info in archive.infolist()
            if not info.is_dir()
            and info.filename.lower().endswith(suffixes)
            and not info.filename.startswith("__MACOSX/")
        ),
        key=lambda info: next(
            i for i, suffix in enumerate(suffixes) if info.filename.lower().endswith(suffix)
        ),
    )
    if not members:
        names = ", ".join(archive.namelist()) or "nothing"
        wanted = " or ".join(suffixes)
        raise fail(f"the zip archive holds no {wanted} file (it holds {names})")
    return raw, stack.enter_context(archive.open(members[0]))


def text_encoding(encoding: str) -> str:
    """An encoding as a person names it in a message: ``UTF-8`` for Python's ``utf-8-sig``
    (UTF-8 with or without a byte-order mark) and its other spellings; others as given."""
    return "UTF-8" if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig") else encoding
