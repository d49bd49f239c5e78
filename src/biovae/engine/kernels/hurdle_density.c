/* Hurdle Gaussian per-sample log-likelihood and, in the same pass, its gradient per unit of the
   upstream gradient: the CPU kernel behind biovae.engine.likelihoods.hurdle_kernel (formulas in
   that module's docstring). Plain C, called through ctypes; compiled on first use by
   biovae.engine.kernel_build with -O3 -ffast-math so the row loops vectorise (glibc's vector
   expf/logf), once per instruction set (baseline, AVX2, AVX-512; biovae.engine.backends picks one).

   Two layouts of the decoder's raw output row:
     cell (hurdle_cell): [loc f | zero logit f | raw scale f], scale = softplus(raw) + floor;
     gene (hurdle):      [loc f | zero logit f], scale = exp(log_scale[j]) per feature.
   The per-unit gradient G (b, 3 f), when asked for, holds d/d loc, d/d logit and, third,
   d/d raw scale (cell) or each element's share of d/d log_scale (gene). */
#include <math.h>
#include <stdint.h>

#define INLINE static inline __attribute__((always_inline))
#define HALF_LOG_2PI 0.91893853320467274f

/* softplus(v) and sigmoid(v) from one exp and one log: e = exp(-|v|). */
INLINE void soft_sig(float v, float *sp, float *sg) {
  float e = expf(-fabsf(v)), d = 1.0f + e;
  *sp = fmaxf(v, 0.0f) + logf(d);
  *sg = (v >= 0.0f ? 1.0f : e) / d;
}

INLINE float row_cell(const float *restrict x, const float *restrict r, float floor_, float *restrict g, int64_t f,
                      int want) {
  const float *restrict loc = r, *restrict logit = r + f, *restrict q = r + 2 * f;
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t j = 0; j < f; ++j) {
    float xv = x[j], l = logit[j], spl, sgl, spq, sgq;
    soft_sig(l, &spl, &sgl);
    soft_sig(q[j], &spq, &sgq);
    float s = spq + floor_, inv = 1.0f / s, z = (xv - loc[j]) * inv;
    int nz = xv != 0.0f;
    float normal = -0.5f * z * z - logf(s) - HALF_LOG_2PI;
    acc += (nz ? normal : l) - spl;
    if (want) {
      g[j] = nz ? z * inv : 0.0f;
      g[f + j] = (nz ? 0.0f : 1.0f) - sgl;
      g[2 * f + j] = nz ? (z * z - 1.0f) * inv * sgq : 0.0f;
    }
  }
  return acc;
}

INLINE float row_gene(const float *restrict x, const float *restrict r, const float *restrict inv_s,
                      const float *restrict log_s, float *restrict g, int64_t f, int want) {
  const float *restrict loc = r, *restrict logit = r + f;
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t j = 0; j < f; ++j) {
    float xv = x[j], l = logit[j], spl, sgl;
    soft_sig(l, &spl, &sgl);
    float inv = inv_s[j], z = (xv - loc[j]) * inv;
    int nz = xv != 0.0f;
    float normal = -0.5f * z * z - log_s[j] - HALF_LOG_2PI;
    acc += (nz ? normal : l) - spl;
    if (want) {
      g[j] = nz ? z * inv : 0.0f;
      g[f + j] = (nz ? 0.0f : 1.0f) - sgl;
      g[2 * f + j] = nz ? z * z - 1.0f : 0.0f;
    }
  }
  return acc;
}

int64_t hurdle_work_size(int64_t f) { return 2 * f; }

/* out[i] = sum_j log p(x_ij) for b rows of f features; raw rows are 3 f (cell) or 2 f (gene)
   wide; log_scale (f) for gene, unused for cell; grad (b, 3 f) written where not NULL; work
   holds hurdle_work_size(f) floats. */
void hurdle_forward(const float *x, const float *raw, const float *log_scale, float floor_, int64_t cell,
                    float *out, float *grad, float *work, int64_t b, int64_t f) {
  const int64_t ld = cell ? 3 * f : 2 * f;
  float *inv_s = work, *log_s = work + f;
  if (!cell)
    for (int64_t j = 0; j < f; ++j) {
      log_s[j] = log_scale[j];
      inv_s[j] = expf(-log_scale[j]);
    }
  for (int64_t i = 0; i < b; ++i) {
    const float *xi = x + i * f, *ri = raw + i * ld;
    float *gi = grad ? grad + i * 3 * f : 0;
    if (cell)
      out[i] = grad ? row_cell(xi, ri, floor_, gi, f, 1) : row_cell(xi, ri, floor_, gi, f, 0);
    else
      out[i] = grad ? row_gene(xi, ri, inv_s, log_s, gi, f, 1) : row_gene(xi, ri, inv_s, log_s, gi, f, 0);
  }
}
