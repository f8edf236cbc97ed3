"""Writing columns of results (predictions for a file of rows) as CSV: vectorised, and all-or-nothing.

pyarrow's CSV writer formats whole columns in C++; the ``csv`` module it replaces spent ~90% of
``mlplab predict --input`` on 1M rows building and formatting one Python list per row. Without pyarrow
(it comes with ``mlplab[parquet]``), the ``csv`` module writes the same table.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import IO

import numpy as np

from .checkpoint import atomic_write
from .config import MlplabError

__all__ = ["write_columns"]


def write_columns(path: str | None, columns: dict[str, np.ndarray]) -> None:
    """Write ``columns`` (name -> 1-D array, all the same length) as CSV with a header row, to stdout or
    atomically to ``path`` (a temporary file renamed over it once complete)."""
    if path is not None and Path(path).is_dir():
        raise MlplabError(f"--out {path} is a folder; give a file name for the predictions CSV")
    if path is not None and not Path(path).parent.is_dir():
        raise MlplabError(f"--out {path}: the folder {Path(path).parent} does not exist")
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        write = _write_with_csv_module
    else:
        import pyarrow.compute as pc

        def write(columns: dict[str, np.ndarray], handle: IO[bytes]) -> None:
            # pyarrow quotes every header name and every text value; as the csv module did, quote only
            # what needs it: the header comes from the csv module, and text is quoted only when a value
            # holds a comma, a quote or a line break
            header = io.StringIO()
            csv.writer(header, lineterminator="\n").writerow(list(columns))
            handle.write(header.getvalue().encode("utf-8"))
            # from_pandas: NaN (a missing input value copied beside the predictions) is an empty cell
            table = pa.table({name: pa.array(values, from_pandas=True) for name, values in columns.items()})
            special = any(pa.types.is_string(column.type) and pc.any(pc.match_substring_regex(
                column, '[,"\r\n]')).as_py() for column in table.columns)
            options = pacsv.WriteOptions(quoting_style="needed" if special else "none", include_header=False)
            pacsv.write_csv(table, handle, write_options=options)

    if path is None:
        buffer = io.BytesIO()
        write(columns, buffer)
        sys.stdout.flush()
        sys.stdout.write(buffer.getvalue().decode("utf-8"))
    else:
        try:
            atomic_write(path, lambda handle: write(columns, handle))
        except OSError as error:  # a read-only folder, a full disk: one line, and nothing half-written
            raise MlplabError(f"--out {path}: cannot write it ({error.strerror or error})") from None


def _write_with_csv_module(columns: dict[str, np.ndarray], handle: IO[bytes]) -> None:
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(list(columns))
    writer.writerows(zip(*([_cell(value) for value in values.tolist()] for values in columns.values())))
    text.flush()
    text.detach()  # leave the handle open: atomic_write closes it


def _cell(value: object) -> object:
    """Missing values (None, NaN) as empty cells, as pyarrow writes them."""
    return "" if value is None or (isinstance(value, float) and value != value) else value
