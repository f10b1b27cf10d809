"""The ``cchmi`` command line: ``cchmi info``, ``cchmi demo``, ``cchmi mi X Y``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _load_array(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{path}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                if len(z.files) != 1:
                    raise ValueError(f"{path}: expected one array in the .npz, found {len(z.files)}: {', '.join(z.files)}")
                return z[z.files[0]]
        if suffix in (".csv", ".txt"):
            return np.loadtxt(p, delimiter="," if suffix == ".csv" else None, ndmin=2)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: could not read it: {exc}") from None
    raise ValueError(f"{path}: unsupported file type {suffix!r} (use .npy, .npz, .csv or .txt)")


def _cmd_info(args) -> int:
    from cchmi.info import format_info, info

    print(format_info(info()))
    return 0


def _cmd_demo(args) -> int:
    import cchmi
    from cchmi.data import load_sample

    sample = load_sample()
    print(f"bundled sample: {sample.description}, n={sample.x.shape[0]}, true MI {sample.mi:.4f} nats\n")
    rows = [
        ("KSG-1, k=3", cchmi.ksg_mi(sample.x, sample.y, k=3, confidence=0.95)),
        ("KSG-2, k=3", cchmi.ksg_mi(sample.x, sample.y, k=3, variant=2, confidence=0.95)),
        ("KSG-1, k=10", cchmi.ksg_mi(sample.x, sample.y, k=10, confidence=0.95)),
    ]
    print(f"{'estimator':<14}{'estimate':>10}{'95% CI':>22}{'error':>10}{'backend':>9}{'seconds':>10}")
    for name, r in rows:
        ci = f"[{r.ci_low:.3f}, {r.ci_high:.3f}]"
        print(f"{name:<14}{r.estimate:>10.4f}{ci:>22}{r.estimate - sample.mi:>+10.4f}{r.backend:>9}{r.seconds:>10.3f}")
    test = cchmi.permutation_test(sample.x, sample.y, n_permutations=99)
    print(f"\npermutation test of independence (99 shuffles): p = {test.p_value:.3g}")
    return 0


def _cmd_mi(args) -> int:
    import cchmi

    x, y = _load_array(args.x), _load_array(args.y)
    if args.labels:
        result = cchmi.mixed_mi(x, y, k=args.k, base=args.base, confidence=args.confidence, backend=args.backend)
    else:
        result = cchmi.ksg_mi(x, y, k=args.k, variant=args.variant, base=args.base, confidence=args.confidence,
                              backend=args.backend)
    print(result)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cchmi", description="Fast mutual-information estimators and the CCH.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="what was built and what is importable").set_defaults(run=_cmd_info)
    sub.add_parser("demo", help="estimate MI on the bundled sample with known MI").set_defaults(run=_cmd_demo)
    mi = sub.add_parser("mi", help="estimate I(X; Y) for two arrays stored in files (.npy, .npz, .csv, .txt)")
    mi.add_argument("x")
    mi.add_argument("y")
    mi.add_argument("-k", type=int, default=3, help="neighbours (default 3)")
    mi.add_argument("--variant", type=int, choices=(1, 2), default=1, help="KSG variant (default 1)")
    mi.add_argument("--labels", action="store_true", help="y holds discrete labels: use the mixed estimator")
    mi.add_argument("--base", type=float, default=np.e, help="logarithm base (default e: nats; 2: bits)")
    mi.add_argument("--confidence", type=float, default=None, help="add a standard error and interval, e.g. 0.95")
    mi.add_argument("--backend", default="auto", help="auto, cpu or numpy")
    mi.set_defaults(run=_cmd_mi)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # argparse exits with status 2 on unknown options
    try:
        return args.run(args)
    except (ValueError, TypeError) as exc:
        print(f"cchmi {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
