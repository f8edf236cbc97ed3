"""Reading a file mlplab did not just write: only a regular file, only up to a size cap.

A run folder's ``history.json`` that is a link to ``/dev/zero``, or a ``--config`` that is a pipe, must
not hang mlplab or exhaust memory: each file is opened, checked on the open handle (so a file swapped in
between cannot slip through) and read only if it is a regular file under the cap for its kind.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import IO

from .config import MlplabError

__all__ = ["UnreadableFile", "open_regular", "read_bytes", "read_json", "read_text"]

MiB = 1 << 20
# What a run folder's files may weigh before mlplab refuses to read them. Generous for real runs
# (a million epochs of history is ~200 MB); small enough that a bogus file cannot exhaust memory.
SIZE_CAPS = {".json": 512 * MiB, ".toml": 16 * MiB, ".pt": 64 * 1024 * MiB}
DEFAULT_CAP = 512 * MiB


class UnreadableFile(MlplabError):
    """A file is missing, not a regular file, too large, or not the text it should be."""


def _cap_for(path: Path) -> int:
    return SIZE_CAPS.get(path.suffix.lower(), DEFAULT_CAP)


def open_regular(path: str | Path, what: str = "file", cap: int | None = None) -> IO[bytes]:
    """Open ``path`` for reading if it is a regular file of at most ``cap`` bytes (checked on the open
    handle, so a file swapped in between cannot slip through); else UnreadableFile."""
    path = Path(path)
    cap = _cap_for(path) if cap is None else cap
    try:
        handle = open(path, "rb")  # noqa: SIM115 - returned to the caller
    except FileNotFoundError:
        raise UnreadableFile(f"{what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise UnreadableFile(f"{path} is a folder, not a {what}") from None
    except OSError as error:
        raise UnreadableFile(f"cannot read {what} {path}: {error.strerror or error}") from None
    info = os.fstat(handle.fileno())
    if not stat.S_ISREG(info.st_mode):
        handle.close()
        raise UnreadableFile(f"{path} is not a regular file (a device, pipe or folder?); refusing to read it "
                             f"as a {what}")
    if info.st_size > cap:
        handle.close()
        raise UnreadableFile(f"{path} is {info.st_size} bytes, more than the {cap} bytes a {what} may have; "
                             "refusing to read it")
    return handle


def read_bytes(path: str | Path, what: str = "file", cap: int | None = None) -> bytes:
    """The bytes of a regular file under ``cap`` (see :func:`open_regular`)."""
    with open_regular(path, what, cap) as handle:
        return handle.read()


def read_text(path: str | Path, what: str = "file") -> str:
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnreadableFile(f"{path} is not UTF-8 text (byte {error.start}); is it damaged?") from None


def read_json(path: str | Path, what: str = "file"):
    try:
        return json.loads(read_text(path, what))
    except ValueError as error:
        raise UnreadableFile(f"{path} is damaged: not valid JSON ({error})") from None
