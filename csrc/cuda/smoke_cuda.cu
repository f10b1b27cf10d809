#include "cuda/smoke_cuda.h"

#include "cuda/common_cuda.cuh"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace cchmi::cuda {
namespace {

__global__ void iota_kernel(long long* out, index_t n) {
  // 64-bit index arithmetic, as everywhere N can be large.
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = i;
}

}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver / no device" error
    return 0;
  }
  return count;
}

int runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

int driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess) return 0;
  return v;
}

const char* device_name(int device) {
  static thread_local cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return "";
  }
  return prop.name;
}

long long iota_sum(index_t n, void* stream) {
  CCHMI_CHECK(n >= 1, "iota_sum: need n >= 1");
  auto s = static_cast<cudaStream_t>(stream);
  long long* dev = nullptr;
  throw_on_error(cudaMallocAsync(reinterpret_cast<void**>(&dev), n * sizeof(long long), s), "cudaMallocAsync");
  const int threads = 256;
  const auto blocks = static_cast<unsigned>((n + threads - 1) / threads);
  iota_kernel<<<blocks, threads, 0, s>>>(dev, n);
  throw_on_error(cudaGetLastError(), "iota_kernel launch");
  std::vector<long long> host(static_cast<size_t>(n));
  throw_on_error(cudaMemcpyAsync(host.data(), dev, n * sizeof(long long), cudaMemcpyDeviceToHost, s), "cudaMemcpyAsync");
  throw_on_error(cudaFreeAsync(dev, s), "cudaFreeAsync");
  throw_on_error(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  long long total = 0;
  for (long long v : host) total += v;
  return total;
}

}  // namespace cchmi::cuda
