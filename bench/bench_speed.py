"""Speed of KSG-1 in cchmi and the installed peers against n: `cchmi bench speed` with its results
in bench/results/speed/ (see cchmi/benchmark.py for the method).

    python -m bench.bench_speed --quick             # under a minute on 2 cores
    python -m bench.bench_speed                     # n up to 100 000, 1+1, 4+4 and 16+16 dims
"""

import sys
from pathlib import Path

from cchmi.cli import main

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "results" / "speed"
    sys.exit(main(["bench", "speed", "--out", str(out), *sys.argv[1:]]))
