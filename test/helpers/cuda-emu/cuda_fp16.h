// float16 for the CPU emulation (cuda_runtime.h here): GCC's _Float16, rounded to nearest even like the GPU.
#pragma once
#include "cuda_runtime.h"

struct __half {
  _Float16 v;
};
struct __half2 {
  __half x, y;  // x in the low half, as on the GPU
};
inline float __half2float(__half h) { return static_cast<float>(h.v); }
inline __half __float2half_rn(float f) { return __half{static_cast<_Float16>(f)}; }
inline float2 __half22float2(__half2 h) { return float2{__half2float(h.x), __half2float(h.y)}; }
inline __half2 __floats2half2_rn(float lo, float hi) { return __half2{__float2half_rn(lo), __float2half_rn(hi)}; }
