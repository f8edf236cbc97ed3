"""Regenerate the README's figures (docs/boundary.png, docs/network.png) from the tutorial's run.

Run from the repository root: ``.venv/bin/python docs/make_figures.py``. The tutorial run is seeded, so
the figures change only when the drawing code does.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import mlplab
from mlplab import plots
from mlplab.report import load_run

DOCS = Path(__file__).resolve().parent


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        mlplab.train(mlplab.Config(), out=Path(folder) / "tutorial")  # `mlplab train`, the tutorial
        run = load_run(Path(folder) / "tutorial")
        for name, figure in (("boundary", plots.plot_boundary(run.model, run.splits)),
                             ("network", plots.plot_network(run.model))):
            print(f"wrote {plots.save(figure, DOCS / f'{name}.png')}")


if __name__ == "__main__":
    sys.exit(main())
