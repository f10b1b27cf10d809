// Runtime -> compile-time dispatch, in one place.
//
// The distance loops of the tree kernels are specialised on the dimension for d <= 8 (the loop is
// unrolled and the point fits in registers); larger d uses the runtime loop (D == 0).
#pragma once

#include <type_traits>

#include "common/check.h"

namespace cchmi {

template <int D>
using dim_constant = std::integral_constant<int, D>;

// Calls f(dim_constant<D>{}) with D = d for 1 <= d <= 8, else D = 0 (runtime dimension).
// f is a generic lambda: [&](auto dim) { constexpr int D = decltype(dim)::value; ... }.
template <typename F>
decltype(auto) dispatch_dim(index_t d, F&& f) {
  switch (d) {
    case 1: return f(dim_constant<1>{});
    case 2: return f(dim_constant<2>{});
    case 3: return f(dim_constant<3>{});
    case 4: return f(dim_constant<4>{});
    case 5: return f(dim_constant<5>{});
    case 6: return f(dim_constant<6>{});
    case 7: return f(dim_constant<7>{});
    case 8: return f(dim_constant<8>{});
    default: return f(dim_constant<0>{});
  }
}

}  // namespace cchmi
