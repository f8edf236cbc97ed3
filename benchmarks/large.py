"""`python benchmarks/large.py [--quick]`: the large benchmark alone (the code lives in mlplab.bench.large)."""

import sys

from mlplab.bench import run

run("quick" if "--quick" in sys.argv else "full", ("large",))
