/* Dropout on the CPU: y[i] = x[i] * scale where a counter-based hash of (seed, i) keeps element i,
   else 0 (hash.h). The mask is a pure function of (seed, i), so the backward pass recomputes it
   instead of storing it, and the same seed gives the same mask on any CPU. PyTorch's CPU
   bernoulli_ draws one Mersenne-Twister number per element instead. Called through ctypes
   (biovae.engine.backends holds the prototype); built by biovae.engine.kernel_build. */
#include <stdint.h>

#include "hash.h"

void dropout_apply(const float *restrict x, float *restrict y, int64_t n, uint64_t seed, uint32_t threshold,
                   float scale) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = keep_element(seed, i, threshold) ? x[i] * scale : 0.0f;
}
