// A CPU emulator for cchmi's CUDA kernels, for tests only (tests/test_cuda_emulated.py).
//
// Compiled with a host C++20 compiler and -DCCHMI_EMULATE_CUDA, csrc/cuda/*.cu run unchanged
// except for their launches (CCHMI_LAUNCH): the blocks of a grid run one after another, and the
// threads of a block run as OS threads, so __syncthreads and __syncthreads_or are real barriers and
// `__shared__` variables (function statics here) are shared by the block's threads. Warp-level
// behaviour is not modelled: the kernels use none. Device pointers are host pointers.
#pragma once

#include <atomic>
#include <barrier>
#include <cmath>
#include <functional>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

struct emu_index {
  unsigned x = 0, y = 0, z = 0;
};
inline thread_local emu_index threadIdx;
inline thread_local emu_index blockIdx;

namespace cchmi_emu {
inline std::barrier<>* block_barrier = nullptr;
inline std::atomic<int> votes[2];
inline thread_local int vote_slot = 0;
}  // namespace cchmi_emu

inline void __syncthreads() { cchmi_emu::block_barrier->arrive_and_wait(); }

// OR of `predicate` over the block, with the barrier of __syncthreads. Two alternating slots: a slot
// is reset by thread 0 after everyone has read it and before anyone can use it again.
inline int __syncthreads_or(int predicate) {
  const int slot = cchmi_emu::vote_slot;
  cchmi_emu::vote_slot ^= 1;
  if (predicate) cchmi_emu::votes[slot].fetch_or(1);
  cchmi_emu::block_barrier->arrive_and_wait();
  const int result = cchmi_emu::votes[slot].load();
  cchmi_emu::block_barrier->arrive_and_wait();
  if (threadIdx.x == 0) cchmi_emu::votes[slot].store(0);
  return result;
}

using cudaError_t = int;
using cudaStream_t = void*;
constexpr cudaError_t cudaSuccess = 0;
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t) { return "emulated"; }

namespace cchmi_emu {
inline void run_grid(dim3 grid, unsigned threads, const std::function<void()>& body) {
  for (unsigned by = 0; by < grid.y; ++by) {
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      std::barrier<> barrier(threads);
      block_barrier = &barrier;
      votes[0] = 0;
      votes[1] = 0;
      std::vector<std::thread> pool;
      for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          threadIdx = {t, 0, 0};
          blockIdx = {bx, by, 0};
          vote_slot = 0;
          body();
        });
      }
      for (auto& th : pool) th.join();
    }
  }
}
}  // namespace cchmi_emu

#define CCHMI_LAUNCH(kernel, grid, block, stream, ...) \
  cchmi_emu::run_grid((grid), (block), [&] { kernel(__VA_ARGS__); })
