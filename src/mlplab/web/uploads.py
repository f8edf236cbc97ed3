"""Files uploaded to the playground: size-limited, read by the library's own reader, kept by content.

An upload is named by the first 16 hex digits of its SHA-256, so the page can keep that id in its URL
and a reload finds the same file (while the server keeps it: the last ``keep`` uploads, in a temporary
folder removed when the server stops).
"""

from __future__ import annotations

import collections
import hashlib
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import MlplabError
from ..data import read_table
from ..preprocess import is_numeric
from .errors import HTTPError

__all__ = ["MAX_UPLOAD_BYTES", "Upload", "Uploads"]

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_UPLOAD_ROWS = 20_000
SUFFIXES = {".csv": ".csv", ".parquet": ".parquet", ".pq": ".parquet"}


@dataclass(frozen=True)
class Upload:
    id: str
    name: str
    path: Path
    columns: list[str]
    summary: list[dict[str, Any]]
    rows: int


class Uploads:
    """The uploads this server keeps (``keep`` most recent)."""

    def __init__(self, keep: int = 16, max_bytes: int = MAX_UPLOAD_BYTES):
        self.keep, self.max_bytes = keep, max_bytes
        self.folder = Path(tempfile.mkdtemp(prefix="mlplab-playground-"))
        self.files: collections.OrderedDict[str, Upload] = collections.OrderedDict()
        self.lock = threading.Lock()

    def add(self, name: str, content: bytes) -> Upload:
        """Check and keep one file; a bad one is a 4xx naming the problem."""
        suffix = SUFFIXES.get(Path(name).suffix.lower())
        if suffix is None:
            raise HTTPError(415, f"{name!r}: upload a .csv or .parquet file")
        if len(content) > self.max_bytes:
            raise HTTPError(413, f"{name!r} is {len(content) / 1e6:.1f} MB; the playground takes files up to "
                                 f"{self.max_bytes / 1e6:.0f} MB (use `mlplab train --data` for bigger ones)")
        if not content.strip():
            raise HTTPError(400, f"{name!r} is empty")
        upload_id = hashlib.sha256(content).hexdigest()[:16]
        with self.lock:
            if upload_id in self.files:
                self.files.move_to_end(upload_id)
                return self.files[upload_id]
        path = self.folder / f"{upload_id}{suffix}"
        path.write_bytes(content)
        try:
            table = read_table(path)  # raises DataError (a 422) with the reader's own message
        except MlplabError:
            path.unlink(missing_ok=True)
            raise
        except Exception as error:  # bytes that are no text, a parser's own exception: still the file's fault
            path.unlink(missing_ok=True)
            raise HTTPError(400, f"{name!r} is not a readable CSV or Parquet file ({type(error).__name__}: "
                                 f"{str(error)[:120]})") from None
        rows = len(next(iter(table.values())))
        if rows > MAX_UPLOAD_ROWS or len(table) < 3:
            path.unlink(missing_ok=True)
            problem = (f"has {rows} rows; the playground takes up to {MAX_UPLOAD_ROWS}" if rows > MAX_UPLOAD_ROWS
                       else "needs at least three columns: a target and two features to draw")
            raise HTTPError(413 if rows > MAX_UPLOAD_ROWS else 400, f"{name!r} {problem}")
        summary = [{"name": column, "numeric": bool(is_numeric(values)),
                    "distinct": len(set(values.tolist()))} for column, values in table.items()]
        upload = Upload(upload_id, Path(name).name, path, list(table), summary, rows)
        with self.lock:
            self.files[upload_id] = upload
            while len(self.files) > self.keep:
                _, old = self.files.popitem(last=False)
                old.path.unlink(missing_ok=True)
        return upload

    def get(self, upload_id: str | None) -> Upload:
        with self.lock:
            upload = self.files.get(upload_id or "")
        if upload is None:
            raise HTTPError(404, "the uploaded file is no longer on this server (it keeps the last few); "
                                 "upload it again")
        return upload

    def remove_all(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
