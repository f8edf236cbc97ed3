"""Output the commands share: CSV rows (to stdout or atomically to a file), JSON, aligned text tables.

Library-side, so the commands and the benchmarks lay out their tables the same way without importing
the CLI's parser module.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from .config import MlplabError

__all__ = ["print_json", "write_rows"]


def write_rows(path: str | None, header: list[str], rows: list[list[Any]]) -> None:
    """CSV to stdout, or atomically to ``path``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if path is None:
        sys.stdout.write(buffer.getvalue())
    else:
        from .checkpoint import atomic_write_text

        if not Path(path).parent.is_dir():
            raise MlplabError(f"--output {path}: the folder {Path(path).parent} does not exist")
        atomic_write_text(path, buffer.getvalue())


def print_json(values: Any) -> None:
    print(json.dumps(values, indent=2))
