// Shared checks and index types of the compiled core.
//
// The Python layer validates every user input (cchmi/_validate.py); the checks here guard the
// kernels' own preconditions so that a caller bypassing Python gets an exception, not a crash.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace cchmi {

// Every index and every product of sizes is 64-bit: n * n overflows int32 past n = 46341.
using index_t = std::int64_t;

}  // namespace cchmi

// Throws std::invalid_argument (pybind11 turns it into ValueError) with the message given.
#define CCHMI_CHECK(cond, msg)                                            \
  do {                                                                    \
    if (!(cond)) throw std::invalid_argument(std::string("cchmi: ") + (msg)); \
  } while (0)
