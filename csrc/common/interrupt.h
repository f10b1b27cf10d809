// Cooperative cancellation of long kernels (Ctrl-C from Python).
//
// A kernel's parallel loops call stop() at the start of each work item (at most a few thousand
// queries). On the calling thread (OpenMP thread 0 of the kernel's teams) stop() asks the caller's
// poll callback, at most once per kPollInterval, whether to stop; once it has said yes, every
// thread skips its remaining items and the kernel returns early with unspecified output. The caller
// checks stopped() after the kernel returns. No region or barrier is added, so results and their
// bits do not depend on polling.
#pragma once

#include <atomic>
#include <chrono>

#include "common/parallel.h"

namespace cchmi {

class Interrupt {
 public:
  // Returns true when the kernel is to stop; called on the thread that called the kernel only.
  using Poll = bool (*)(void* context);
  static constexpr std::chrono::milliseconds kPollInterval{200};

  Interrupt() = default;  // never stops
  Interrupt(Poll poll, void* context) : poll_(poll), context_(context), last_(clock::now()) {}
  Interrupt(const Interrupt&) = delete;
  Interrupt& operator=(const Interrupt&) = delete;

  bool stop() {
    if (stopped_.load(std::memory_order_relaxed)) return true;
    if (poll_ == nullptr || thread_num() != 0) return false;
    const auto now = clock::now();
    if (now - last_ < kPollInterval) return false;
    last_ = now;
    if (!poll_(context_)) return false;
    stopped_.store(true, std::memory_order_relaxed);
    return true;
  }
  bool stopped() const { return stopped_.load(std::memory_order_relaxed); }

 private:
  using clock = std::chrono::steady_clock;
  Poll poll_ = nullptr;
  void* context_ = nullptr;
  clock::time_point last_{};  // touched by the calling thread only
  std::atomic<bool> stopped_{false};
};

}  // namespace cchmi
