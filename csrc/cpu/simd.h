// Runtime choice of the SIMD level of the CPU kernels, as numpy and faiss do it.
//
// The kernels are compiled once per level (cpu/simd_target.h); the level is chosen once, at first
// use, from CPUID (the best level that is compiled in and that this CPU and OS support), unless the
// environment variable CCHMI_SIMD=baseline|avx2|avx512 forces one. Every level returns bit for bit
// the same distances, neighbours and counts: one rounding per coordinate difference, then exact
// abs and max, with no FMA contraction (-ffp-contract=off) and no -ffast-math.
#pragma once

#include <string>
#include <vector>

namespace cchmi::cpu {

enum class Simd : int { Baseline = 0, Avx2 = 1, Avx512 = 2 };

const char* simd_name(Simd level);

// The levels compiled into this build that this CPU supports, ascending.
std::vector<Simd> simd_levels();

// The level in use. Throws std::runtime_error naming CCHMI_SIMD and the supported levels when
// CCHMI_SIMD names an unknown level or one this build or CPU lacks.
Simd simd_level();

}  // namespace cchmi::cpu

// Calls X(ns) for the namespace of every SIMD level: declarations of the per-level kernels.
#define CCHMI_SIMD_NAMESPACES(X) X(baseline) X(avx2) X(avx512)
