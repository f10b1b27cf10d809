"""The CUDA build path on a real GPU: the module runs a kernel on the caller's stream.

Marked gpu: skipped without a GPU, failed instead under --require-gpu / CCHMI_REQUIRE_GPU=1.
"""

import pytest

pytestmark = pytest.mark.gpu


def test_cuda_kernel_runs_with_64_bit_sizes():
    from cchmi import _cuda

    assert _cuda.device_count() >= 1
    assert _cuda.device_name(0) != ""
    n = 3_000_001
    assert _cuda.iota_sum(n) == n * (n - 1) // 2


def test_cuda_kernel_rejects_bad_size():
    from cchmi import _cuda

    with pytest.raises(ValueError, match="n >= 1"):
        _cuda.iota_sum(0)
