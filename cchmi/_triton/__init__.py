"""Triton kernels (pure Python, compiled by Triton's JIT; run on the CPU under TRITON_INTERPRET=1)."""
