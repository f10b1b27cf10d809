// The CUDA side of the build, proven from day one: a trivial kernel and the runtime facts that
// cchmi.info() reports. Torch-free: raw pointers and sizes; the caller's stream as a void*.
#pragma once

#include "common/check.h"

namespace cchmi::cuda {

// cudaGetDeviceCount, or 0 when there is no driver or no device (never throws for that).
int device_count();
// CUDA runtime version linked into the module (e.g. 13000), and the driver's (0 without one).
int runtime_version();
int driver_version();
// Device name of `device`, or "" when unavailable.
const char* device_name(int device);
// Self-test on the current device: fills out[i] = i on the GPU and copies it back; returns the
// sum of out (n * (n - 1) / 2) or throws std::runtime_error with the CUDA error text.
long long iota_sum(index_t n, void* stream);

}  // namespace cchmi::cuda
