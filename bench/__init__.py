"""cchmi benchmarks: run as ``python -m bench.<name>`` from the repository root; ``cchmi bench``
runs bench_accuracy and bench_ksg from here (see bench/README.md)."""
