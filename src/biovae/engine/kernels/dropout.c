/* Dropout on the CPU: y[i] = x[i] * scale where a counter-based hash of (seed, i) keeps element i,
   else 0. The mask is a pure function of (seed, i), so the backward pass recomputes it instead of
   storing it, and the same seed gives the same mask on any CPU. PyTorch's CPU
   bernoulli_ draws one Mersenne-Twister number per element instead.
   The hash is two rounds of the "lowbias32" integer mixer (xor-shift-multiply), keyed by the two
   halves of a 64-bit seed; it uses 32-bit integer operations only, so it vectorises on AVX2 and
   AVX-512. Called through ctypes; built by biovae.engine.kernel_build. */
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

static inline uint32_t mix32(uint32_t v) {
  v ^= v >> 16;
  v *= 0x7feb352du;
  v ^= v >> 15;
  v *= 0x846ca68bu;
  v ^= v >> 16;
  return v;
}

/* keep: elements whose hash is below `threshold` (= keep probability * 2^32) survive. */
CLONES void dropout_apply(const float *restrict x, float *restrict y, int64_t n, uint64_t seed, uint32_t threshold,
                          float scale) {
  uint32_t k1 = (uint32_t)seed, k2 = (uint32_t)(seed >> 32);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    uint32_t h = mix32(mix32((uint32_t)i + k1) ^ k2);
    y[i] = h < threshold ? x[i] * scale : 0.0f;
  }
}
