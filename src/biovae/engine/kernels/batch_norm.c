/* Batch norm (training: batch statistics), ReLU and dropout fused into one pass each way, for
   biovae.engine.layers.BatchNormReluDropout; the dropout mask is dropout.c's (hash.h). Called
   through ctypes (prototypes in biovae.engine.backends); built by biovae.engine.kernel_build. */
#include <math.h>
#include <stdint.h>

#include "hash.h"

/* Batch norm (training: batch statistics), ReLU and this dropout as one pass over an (n, c)
   row-major batch h, the layers `mlp` stacks after each Linear (engine/layers.py):
     a = gamma (h - mean) / sqrt(var + eps) + beta,  y = keep(i) ? max(a, 0) scale : 0,
   with mean and var (biased) per column over the n rows. Writes y, mean and invstd, and moves the
   running statistics by `momentum` as nn.BatchNorm1d does (the variance unbiased there). The
   mask is dropout_apply's (same seed and flat index i give the same keep), p = 0 keeps all. */
void bnrd_forward(const float *restrict h, const float *restrict gamma, const float *restrict beta,
                         float *restrict y, float *restrict mean, float *restrict invstd, float *restrict var,
                         float *restrict run_mean, float *restrict run_var, float momentum, int64_t n, int64_t c,
                         float eps, uint64_t seed, uint32_t threshold, float scale, int64_t all_kept) {
  for (int64_t j = 0; j < c; ++j) mean[j] = 0.0f, var[j] = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) mean[j] += h[i * c + j];
  }
  for (int64_t j = 0; j < c; ++j) mean[j] /= (float)n;
  for (int64_t i = 0; i < n; ++i) {
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) {
      float d = h[i * c + j] - mean[j];
      var[j] += d * d;
    }
  }
  for (int64_t j = 0; j < c; ++j) {
    var[j] /= (float)n;
    invstd[j] = 1.0f / sqrtf(var[j] + eps);
    run_mean[j] = (1.0f - momentum) * run_mean[j] + momentum * mean[j];
    run_var[j] = (1.0f - momentum) * run_var[j] + momentum * var[j] * ((float)n / (float)(n - 1));
  }
  for (int64_t i = 0; i < n; ++i) {
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) {
      int64_t at = i * c + j;
      float a = (h[at] - mean[j]) * invstd[j] * gamma[j] + beta[j];
      int keep = all_kept || keep_element(seed, at, threshold);
      y[at] = (keep && a > 0.0f) ? a * scale : 0.0f;
    }
  }
}

/* Its gradient: da = dy scale where y > 0 (kept and above 0), else 0; then batch norm's:
   dgamma = sum_rows da xhat, dbeta = sum_rows da, dh = gamma invstd (da - dbeta / n - xhat dgamma / n). */
void bnrd_backward(const float *restrict dy, const float *restrict h, const float *restrict y,
                          const float *restrict gamma, const float *restrict mean, const float *restrict invstd,
                          float *restrict dh, float *restrict dgamma, float *restrict dbeta, int64_t n, int64_t c,
                          float scale) {
  for (int64_t j = 0; j < c; ++j) dgamma[j] = 0.0f, dbeta[j] = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) {
      int64_t at = i * c + j;
      float da = y[at] > 0.0f ? dy[at] * scale : 0.0f;
      dbeta[j] += da;
      dgamma[j] += da * (h[at] - mean[j]) * invstd[j];
    }
  }
  for (int64_t i = 0; i < n; ++i) {
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) {
      int64_t at = i * c + j;
      float da = y[at] > 0.0f ? dy[at] * scale : 0.0f;
      float xhat = (h[at] - mean[j]) * invstd[j];
      dh[at] = gamma[j] * invstd[j] * (da - (dbeta[j] + xhat * dgamma[j]) / (float)n);
    }
  }
}
