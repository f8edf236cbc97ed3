"""`python benchmarks/serve_load.py [--quick]`: `mlplab serve` under load on 127.0.0.1 beside a bare FastAPI +
torch endpoint, in the same run (the code lives in mlplab.bench.serve)."""

import sys

from mlplab.bench import run

run("quick" if "--quick" in sys.argv else "full", ("serve",))
