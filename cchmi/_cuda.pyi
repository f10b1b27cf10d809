"""Type stub of the compiled module cchmi._cuda (csrc/bind_cuda.cpp), built when nvcc is found.

Device pointers are integers (``tensor.data_ptr()``), the stream its handle
(``torch.cuda.current_stream().cuda_stream``); the kernels run asynchronously on that stream.
``*_blocks`` answer the rows of a list of query blocks of ``tile_rows`` sorted rows (``queries=``).
"""

arches: str
compiler_version: str
tile_rows: int
max_k: int

def device_count() -> int: ...
def device_name(device: int = 0) -> str: ...
def runtime_version() -> int: ...
def driver_version() -> int: ...
def iota_sum(n: int, stream: int = 0) -> int: ...
def knn(
    points: int,
    order: int,
    box_lo: int,
    box_hi: int,
    batch: int,
    n: int,
    d: int,
    k: int,
    out_dist: int,
    out_idx: int,
    double_precision: bool,
    device: int,
    stream: int,
) -> None: ...
def knn_blocks(
    points: int,
    order: int,
    box_lo: int,
    box_hi: int,
    batch: int,
    n: int,
    d: int,
    k: int,
    blocks: int,
    n_blocks: int,
    out_dist: int,
    out_idx: int,
    double_precision: bool,
    device: int,
    stream: int,
) -> None: ...
def count_within_pair(
    x: int,
    box_lo_x: int,
    box_hi_x: int,
    dx: int,
    y: int,
    box_lo_y: int,
    box_hi_y: int,
    dy: int,
    batch: int,
    n: int,
    radius_x: int,
    radius_y: int,
    inclusive: bool,
    out_x: int,
    out_y: int,
    double_precision: bool,
    device: int,
    stream: int,
) -> None: ...
def count_within_pair_blocks(
    x: int,
    box_lo_x: int,
    box_hi_x: int,
    dx: int,
    y: int,
    box_lo_y: int,
    box_hi_y: int,
    dy: int,
    batch: int,
    n: int,
    radius_x: int,
    radius_y: int,
    inclusive: bool,
    blocks: int,
    n_blocks: int,
    out_x: int,
    out_y: int,
    double_precision: bool,
    device: int,
    stream: int,
) -> None: ...
