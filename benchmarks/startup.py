"""`python benchmarks/startup.py [--quick]`: the startup benchmark alone (the code lives in mlplab.bench.startup)."""

import sys

from mlplab.bench import run

run("quick" if "--quick" in sys.argv else "full", ("startup",))
