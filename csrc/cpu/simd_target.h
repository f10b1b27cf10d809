// Per-level compilation of the CPU kernels (the runtime choice of a level is in cpu/simd.h).
//
// CMake compiles knn_cpu.cpp and count_cpu.cpp once per SIMD level with CCHMI_SIMD_LEVEL set to
// 0 (baseline: the compiler's default target, SSE2 on x86-64), 1 (avx2: AVX2 + FMA) or 2 (avx512:
// AVX-512 F, DQ, BW, VL). Between CCHMI_SIMD_BEGIN and CCHMI_SIMD_END the level's instructions
// are enabled by a target pragma, and the code lives in the namespace cchmi::cpu::<level>.
//
// Why a pragma and not -mavx2 / -mavx512f on the command line: the std templates the kernels use
// (vector, sort, nth_element, ...) are instantiated in every translation unit and the linker keeps
// one copy of each. With command-line flags the copy kept could be an AVX-512 one, and the
// baseline path would then die with "Illegal instruction" on an older CPU. Under the pragma, a
// template defined before it (all of std) is instantiated for the baseline target everywhere,
// while the kernels' own inline functions and templates get distinct names per level.
//
// Rule for every file using these macros: all #includes go above CCHMI_SIMD_BEGIN.
#pragma once

#if !defined(CCHMI_SIMD_LEVEL)
#error "CCHMI_SIMD_LEVEL must be defined (0 baseline, 1 avx2, 2 avx512): see CMakeLists.txt"
#endif

#if CCHMI_SIMD_LEVEL == 0
#define CCHMI_SIMD_NS baseline
#define CCHMI_SIMD_TARGET_PUSH
#define CCHMI_SIMD_TARGET_POP
#elif !defined(__GNUC__)
#error "the avx2 and avx512 levels need GCC or Clang (target pragmas); CMake builds them only there"
#elif CCHMI_SIMD_LEVEL == 1
#define CCHMI_SIMD_NS avx2
#if defined(__clang__)
#define CCHMI_SIMD_TARGET_PUSH \
  _Pragma("clang attribute push(__attribute__((target(\"avx2,fma\"))), apply_to = function)")
#define CCHMI_SIMD_TARGET_POP _Pragma("clang attribute pop")
#else
#define CCHMI_SIMD_TARGET_PUSH _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define CCHMI_SIMD_TARGET_POP _Pragma("GCC pop_options")
#endif
#elif CCHMI_SIMD_LEVEL == 2
#define CCHMI_SIMD_NS avx512
#if defined(__clang__)
#define CCHMI_SIMD_TARGET_PUSH                                                                      \
  _Pragma(                                                                                          \
      "clang attribute push(__attribute__((target(\"avx2,fma,avx512f,avx512dq,avx512bw,avx512vl\"))), " \
      "apply_to = function)")
#define CCHMI_SIMD_TARGET_POP _Pragma("clang attribute pop")
#else
#define CCHMI_SIMD_TARGET_PUSH \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,avx512f,avx512dq,avx512bw,avx512vl\")")
#define CCHMI_SIMD_TARGET_POP _Pragma("GCC pop_options")
#endif
#else
#error "CCHMI_SIMD_LEVEL must be 0, 1 or 2"
#endif

#define CCHMI_SIMD_BEGIN CCHMI_SIMD_TARGET_PUSH namespace cchmi::cpu::CCHMI_SIMD_NS {
#define CCHMI_SIMD_END } CCHMI_SIMD_TARGET_POP
