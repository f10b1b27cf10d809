// The candidate-tile size shared by the CUDA kernels and their callers' bounding boxes.
#pragma once

#include "common/check.h"

namespace cchmi::cuda {

// Rows per candidate tile: box arrays describe runs of this many (spatially sorted) points.
constexpr index_t kTileRows = 64;

}  // namespace cchmi::cuda
