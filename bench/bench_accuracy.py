"""Accuracy of cchmi's estimators and the installed peers on the task catalogue: `cchmi bench
accuracy` with its results in bench/results/accuracy/ (see cchmi/benchmark.py for the method).

    python -m bench.bench_accuracy --quick          # about 2 minutes on 2 cores
    python -m bench.bench_accuracy                  # every task, n = 500, 2000, 8000, 5 seeds
"""

import sys
from pathlib import Path

from cchmi.cli import main

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "results" / "accuracy"
    sys.exit(main(["bench", "accuracy", "--out", str(out), *sys.argv[1:]]))
