/* The dropout mask's hash, shared by dropout.c and batch_norm.c so that both keep the same
   elements for the same (seed, index): two rounds of the "lowbias32" integer mixer
   (xor-shift-multiply), keyed by the two halves of a 64-bit seed. 32-bit integer operations only,
   so the loops that call it vectorise on AVX2 and AVX-512. */
#ifndef BIOVAE_HASH_H
#define BIOVAE_HASH_H
#include <stdint.h>

static inline uint32_t mix32(uint32_t v) {
  v ^= v >> 16;
  v *= 0x7feb352du;
  v ^= v >> 15;
  v *= 0x846ca68bu;
  v ^= v >> 16;
  return v;
}

/* 1 where element i is kept (its hash below threshold = keep probability * 2^32) */
static inline int keep_element(uint64_t seed, int64_t i, uint32_t threshold) {
  return mix32(mix32((uint32_t)i + (uint32_t)seed) ^ (uint32_t)(seed >> 32)) < threshold;
}
#endif
