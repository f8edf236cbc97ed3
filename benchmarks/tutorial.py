"""`python benchmarks/tutorial.py [--quick]`: the tutorial benchmark alone (the code lives in mlplab.bench.tutorial)."""

import sys

from mlplab.bench import run

run("quick" if "--quick" in sys.argv else "full", ("tutorial",))
