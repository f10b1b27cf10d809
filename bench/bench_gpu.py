"""GPU kNN benchmark: KSG-1 end to end, the kNN pass and the counting pass on the cuda and triton
backends, against a torch.cdist-by-hand baseline in the same run.

Reports the card, N, dimensions, seconds (median of repeats, CUDA-synchronised), pair-dims/s and
the percentage of the brute-force max-norm limit: two instructions per pair and dimension (a
subtraction, then a max with an |x| operand) on every FP32 lane, SMs x 128 x clock / 2 (1.67e13 on
an H200 or H100 SXM at 1.98 GHz). A pass's pair-dims are N (N - 1) d, the work of brute force: for
the brute-force rows (prune=False) the percentage is the kernel's efficiency; for the pruned rows
(what the estimators run) it is an effective rate, and may pass 100%.

    python -m bench.bench_gpu            # N = 2^20 (KSG-1 8+8 dims, kNN at d = 16), baseline at 2^16
    python -m bench.bench_gpu --quick    # N = 2^18, baseline at 2^14 (the gpu_check.sh table)
    python -m bench.bench_gpu --huge     # adds KSG-1 at N = 2^24, 8+8 dims (brute force: many minutes)

Rows are appended to bench/results/bench_gpu.csv.
"""

from __future__ import annotations

import argparse

from ._harness import append_csv, machine, markdown_table, require_compiled, time_call

# Boost clocks (Hz) of the cards the limit is quoted for; others use 1.98 GHz and say so.
_CLOCKS = {"H100 PCIe": 1.755e9, "H100": 1.98e9, "H200": 1.98e9}


def _limit(torch) -> tuple[float, str]:
    props = torch.cuda.get_device_properties(0)
    clock = next((hz for key, hz in _CLOCKS.items() if key in props.name), None)
    note = "" if clock is not None else "clock assumed 1.98 GHz"
    return props.multi_processor_count * 128 * (clock or 1.98e9) / 2, note


def _seconds(torch, fn, repeats: int, warmup: bool = True) -> tuple[float, object]:
    """The harness's median of `repeats` calls, each waiting for the GPU; and the last result. The
    warm-up call compiles Triton kernels and loads the CUDA module."""

    def synced():
        out = fn()
        torch.cuda.synchronize()
        return out

    timing = time_call(synced, repeats, warmup)
    return timing.median, timing.value


def ksg_by_hand(torch, x, y, k: int, chunk: int = 4096) -> float:
    """KSG-1 as a user writes it with torch.cdist(p=inf) and topk, in row chunks (one cdist of all
    pairs fails past 2^31 output elements)."""
    n = x.shape[0]
    joint = torch.cat([x, y], dim=1)
    terms = torch.zeros((), dtype=torch.float64, device=x.device)
    for s in range(0, n, chunk):
        rows = torch.arange(s, min(n, s + chunk), device=x.device)
        d = torch.cdist(joint[rows], joint, p=float("inf"))
        d[torch.arange(rows.numel(), device=x.device), rows] = float("inf")
        rho = d.topk(k, dim=1, largest=False).values[:, -1:]
        nx = ((torch.cdist(x[rows], x, p=float("inf")) < rho).sum(1) - 1).double()  # minus the point itself
        ny = ((torch.cdist(y[rows], y, p=float("inf")) < rho).sum(1) - 1).double()
        terms += (torch.special.digamma(nx + 1.0) + torch.special.digamma(ny + 1.0)).sum()
    return float(torch.special.digamma(torch.tensor(float(k), dtype=torch.float64))
                 + torch.special.digamma(torch.tensor(float(n), dtype=torch.float64)) - terms.cpu() / n)


def _gaussian(torch, n: int, dx: int, dy: int, seed: int = 0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(n, dx, device="cuda", generator=gen)
    y = 0.6 * x[:, :dy] + 0.8 * torch.randn(n, dy, device="cuda", generator=gen)
    return x, y


def run(log2_n: int, log2_baseline: int, huge: bool, repeats: int) -> list[dict]:
    import torch

    import cchmi
    from cchmi import ops

    limit, limit_note = _limit(torch)
    rows = []

    def row(case, backend, n, dims, seconds, pair_dims, estimate="", ratio="", note=""):
        rate = pair_dims / seconds
        rows.append({"case": case, "backend": backend, "n": n, "dims": dims, "seconds": seconds,
                     "pair_dims_per_s": rate, "pct_of_limit": 100 * rate / limit, "estimate": estimate,
                     "speedup_vs_cdist": ratio, "note": note or limit_note})

    n = 1 << log2_n
    x, y = _gaussian(torch, n, 8, 8)
    for name in ("cuda", "triton"):
        be = ops.resolve(name, device=x.device)
        # KSG-1 end to end (preparation, kNN, both counts, digamma sum), exact float32, k = 5.
        sec, res = _seconds(torch, lambda name=name: cchmi.ksg_mi(x, y, k=5, backend=name), repeats)
        row("KSG-1 end to end, k=5", name, n, "8+8", sec, n * (n - 1) * 16 * 2, f"{res.estimate:.4f}")
        # The kNN pass alone at d = 16, and the counting pass (both marginals, one pass): with the
        # spatial sort and tile pruning (what the estimators run), and as brute force (prune=False),
        # whose pair-dims/s is the kernel's efficiency against the limit.
        joint = torch.cat([x, y], dim=1).contiguous()
        for prune in (True, False):
            be.prune = prune
            how = "pruned" if prune else "brute force"
            sec, (dist, _) = _seconds(torch, lambda be=be, joint=joint: be.knn(joint, 5), repeats)
            row(f"kNN pass, k=5, {how}", name, n, "16", sec, n * (n - 1) * 16)
            rho = dist[:, -1].contiguous()
            sec, _ = _seconds(torch, lambda be=be, rho=rho: be.count_pair(x, y, rho, rho, False), repeats)
            row(f"count pass, both marginals, {how}", name, n, "8+8", sec, n * (n - 1) * 16)

    # The baseline at a size it can do in the same run, against cuda at that size.
    nb = 1 << log2_baseline
    xb, yb = _gaussian(torch, nb, 8, 8, seed=1)
    base_sec, base_est = _seconds(torch, lambda: ksg_by_hand(torch, xb, yb, 5), 1, warmup=False)
    row("KSG-1 by hand (torch.cdist p=inf + topk)", "torch", nb, "8+8", base_sec, nb * (nb - 1) * 16 * 2,
        f"{base_est:.4f}")
    opts = {"k": 5, "ties": "none", "standardize": False}  # the same arithmetic as the baseline
    sec, res = _seconds(torch, lambda: cchmi.ksg_mi(xb, yb, backend="cuda", **opts), repeats)
    row("KSG-1 end to end, k=5 (no jitter)", "cuda", nb, "8+8", sec, nb * (nb - 1) * 16 * 2,
        f"{res.estimate:.4f}", base_sec / sec)

    if huge:
        nh = 1 << 24
        del x, y, joint, dist, rho
        xh, yh = _gaussian(torch, nh, 8, 8, seed=2)
        torch.cuda.reset_peak_memory_stats()
        sec, res = _seconds(torch, lambda: cchmi.ksg_mi(xh, yh, k=5, backend="cuda"), 1, warmup=False)
        row("KSG-1 end to end, k=5", "cuda", nh, "8+8", sec, nh * (nh - 1) * 16 * 2, f"{res.estimate:.4f}",
            note=f"peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 2^18, baseline at 2^14")
    parser.add_argument("--huge", action="store_true", help="add N = 2^24 (8+8 dims)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    require_compiled()
    import torch

    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device visible, nothing to measure")
        return
    facts = machine()
    facts["gpu"] = torch.cuda.get_device_name(0)
    rows = run(18 if args.quick else 20, 14 if args.quick else 16, args.huge, args.repeats)
    append_csv("bench_gpu", [{**facts, **r} for r in rows])
    print(f"card: {facts['gpu']}; git {facts['git']}; {facts['date']} UTC")
    print(markdown_table(
        ["case", "backend", "N", "dims", "seconds", "pair-dims/s", "% of limit", "estimate", "x cdist", "note"],
        [[r["case"], r["backend"], r["n"], r["dims"], f"{r['seconds']:.4g}", f"{r['pair_dims_per_s']:.3g}",
          f"{r['pct_of_limit']:.1f}", r["estimate"], f"{r['speedup_vs_cdist']:.0f}x" if r["speedup_vs_cdist"] else "",
          r["note"]] for r in rows]))


if __name__ == "__main__":
    main()
