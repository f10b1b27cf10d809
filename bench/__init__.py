"""cchmi benchmarks. The wheel ships this folder as the package ``cchmi.bench``: ``cchmi bench SUITE``
runs bench_accuracy, bench_cch and bench_ksg from it (``python -m cchmi.bench.<name>`` runs any
script). From a source checkout the scripts also run as ``python -m bench.<name>`` from the
repository root (see bench/README.md); their imports of each other are relative, so both names work."""
