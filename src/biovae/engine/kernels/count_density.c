/* NB / ZINB per-sample log-likelihood and its gradient in one pass over (batch, features) floats:
   the CPU kernel behind biovae.engine.count_density (formulas in that module's docstring).
   Plain C, called through ctypes; compiled on first use by biovae.engine.kernel_build with
   -O3 -ffast-math so the loops vectorise (glibc's vector logf/expf), once per instruction set
   (baseline, AVX2, AVX-512: biovae.engine.backends picks the one the CPU runs, or the one
   BIOVAE_KERNEL_ISA names; the AVX-512 build lists non-zero counts with vpcompressd). Counts up to 8 take exact finite forms of the lgamma and digamma differences;
   larger counts their shifted asymptotic series (y >= 1), so that both vectorise too; relative
   error against float64 below 2e-6 (tests/test_likelihoods.py). */
#include <math.h>
#include <stdint.h>

#define INLINE static inline __attribute__((always_inline))

#define EPS 1e-8f

static inline float softplus_(float v) { return fmaxf(v, 0.0f) + logf(1.0f + expf(-fabsf(v))); }
static inline float sigmoid_(float v) { return 1.0f / (1.0f + expf(-v)); }

/* lgamma(y), y >= 1, in double: lgamma(y + 4) by Stirling's series, less log(y (y+1) (y+2) (y+3)).
   Double because lgamma(x + theta) - lgamma(theta) cancels: at theta = 20,000 each is about
   180,000, where a float step is 0.016. */
static inline double lgamma_ge1(double y) {
  double w = y + 4.0, inv = 1.0 / w, inv2 = inv * inv;
  double series = inv * (1.0 / 12 - inv2 * (1.0 / 360 - inv2 * (1.0 / 1260)));
  return (w - 0.5) * log(w) - w + 0.91893853320467274 + series - log(y * (y + 1.0) * (y + 2.0) * (y + 3.0));
}

/* digamma(y), y >= 1: digamma(y + 6) by its asymptotic series, less sum 1 / (y + i), i < 6. */
static inline float digamma_ge1(float y) {
  float acc = 1.0f / y + 1.0f / (y + 1.0f) + 1.0f / (y + 2.0f) + 1.0f / (y + 3.0f) + 1.0f / (y + 4.0f) + 1.0f / (y + 5.0f);
  float w = y + 6.0f, inv = 1.0f / w, inv2 = inv * inv;
  float series = inv2 * (1.0f / 12 - inv2 * (1.0f / 120 - inv2 * (1.0f / 252)));
  return logf(w) - 0.5f * inv - series - acc;
}

/* lgamma(x + t) - lgamma(t) - lgamma(x + 1) for x > 0, t > 0, given lgt = lgamma(t) in double
   (t may be below 1: lgamma(x + t) = lgamma(x + t + 1) - log(x + t)). */
static inline float gamma_terms(float x, float t, double lgt) {
  double y = (double)x + (double)t;
  return (float)(lgamma_ge1(y + 1.0) - log(y) - lgt - lgamma_ge1((double)x + 1.0));
}

/* Counts up to SMALL (96 % of the non-zero counts of a droplet data set) take exact finite forms:
   lgamma(x + t) - lgamma(t) - lgamma(x + 1) = log prod_{i<x} (t + i) / (i + 1), one log of a
   product in double (no overflow for any float t: (t + 7)^8 / 8! < 1e308), and
   digamma(x + t) - digamma(t) = sum_{i<x} 1 / (t + i). Both are more accurate than the series
   (no cancellation between two large lgammas) and cost one log instead of five. */
#define SMALL 8
static inline float small_gamma_terms(float x, float t) {
  double p = 1.0, td = (double)t;
  for (int i = 0; i < SMALL; ++i) p *= ((float)i < x) ? (td + i) / (double)(i + 1) : 1.0;
  return (float)log(p);
}

static inline float small_digamma_diff(float x, float t) {
  float acc = 0.0f;
  for (int i = 0; i < SMALL; ++i) acc += ((float)i < x) ? 1.0f / (t + (float)i) : 0.0f;
  return acc;
}

/* The non-zero counts of one row, as feature indices: counts up to SMALL in sj[0, ns), larger
   ones in j[0, n); val is scratch for per-count results. The gamma-function loops then run
   vectorised over the non-zero counts only (single-cell rows are mostly zeros), loading x, theta
   and the per-feature terms through the indices. */
typedef struct {
  int32_t *j, *sj;
  float *val;
  int64_t n, ns;
} Gathered;

/* Branch-free: each index is written to both lists and each cursor advances by its condition
   (zero and non-zero counts alternate unpredictably at droplet sparsity; a branch per count cost
   a misprediction each). */
static inline void gather_scalar(const float *restrict x, int32_t *restrict sj, int32_t *restrict gj, int64_t j,
                                 int64_t f, int64_t *ns_io, int64_t *n_io) {
  int64_t n = *n_io, ns = *ns_io;
  for (; j < f; ++j) {
    float v = x[j];
    sj[ns] = (int32_t)j;
    gj[n] = (int32_t)j;
    ns += (v > 0.0f) & (v <= (float)SMALL);
    n += v > (float)SMALL;
  }
  *n_io = n;
  *ns_io = ns;
}

#define PAD 16 /* each list may be written up to 16 entries past its end */
#if defined(__AVX512F__)
#include <immintrin.h>
/* 16 counts at a time: compare into masks, compress the indices in a register, store all 16 and
   advance each cursor by its mask's count. The register form of vpcompressd, not the store form,
   which Zen 4 runs microcoded at about a hundred cycles. The scalar loop (its two stores per
   count wait on its cursors) was about half of each row loop's own time (perf, Zen 4 EPYC);
   benchmarks/likelihood_speed.py times the AVX-512 and AVX2 builds. */
static void gather(const float *restrict x, Gathered *s, int64_t f) {
  int64_t n = 0, ns = 0, j = 0;
  const __m512 zero = _mm512_setzero_ps(), small = _mm512_set1_ps((float)SMALL);
  const __m512i step = _mm512_set1_epi32(16);
  __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (; j + 16 <= f; j += 16) {
    __m512 v = _mm512_loadu_ps(x + j);
    __mmask16 pos = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), big = _mm512_cmp_ps_mask(v, small, _CMP_GT_OQ);
    __mmask16 sm = pos & (__mmask16)~big;
    _mm512_storeu_si512((void *)(s->sj + ns), _mm512_maskz_compress_epi32(sm, idx));
    _mm512_storeu_si512((void *)(s->j + n), _mm512_maskz_compress_epi32(big, idx));
    ns += __builtin_popcount(sm);
    n += __builtin_popcount(big);
    idx = _mm512_add_epi32(idx, step);
  }
  gather_scalar(x, s->sj, s->j, j, f, &ns, &n);
  s->n = n;
  s->ns = ns;
}
#else
static void gather(const float *restrict x, Gathered *s, int64_t f) {
  int64_t n = 0, ns = 0;
  gather_scalar(x, s->sj, s->j, 0, f, &ns, &n);
  s->n = n;
  s->ns = ns;
}
#endif

INLINE float row_forward(const float *restrict x, const float *restrict mu, const float *restrict logit,
                         const float *restrict lt, const float *restrict th, const double *restrict lgt,
                         Gathered *s, int64_t f, int zinb) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t j = 0; j < f; ++j) {
    float xv = x[j], m = mu[j], t = th[j];
    float ls = logf(t + m);
    float nb = t * (lt[j] - ls) + xv * (logf(m + EPS) - ls);
    float e = nb;
    if (zinb) e += (xv > 0.0f ? 0.0f : softplus_(logit[j] - nb)) - softplus_(logit[j]);
    acc += e;
  }
  gather(x, s, f);
  const int32_t *restrict sj = s->sj, *restrict gj = s->j;
  const int64_t n = s->n, ns = s->ns;
  float gam = 0.0f, small = 0.0f;
#pragma omp simd reduction(+ : small)
  for (int64_t k = 0; k < ns; ++k) small += small_gamma_terms(x[sj[k]], th[sj[k]]);
#pragma omp simd reduction(+ : gam)
  for (int64_t k = 0; k < n; ++k) gam += gamma_terms(x[gj[k]], th[gj[k]], lgt[gj[k]]);
  return acc + small + gam;
}

static float row_forward_nb(const float *x, const float *mu, const float *lt, const float *th,
                                   const double *lgt, Gathered *s, int64_t f) {
  return row_forward(x, mu, 0, lt, th, lgt, s, f, 0);
}

static float row_forward_zinb(const float *x, const float *mu, const float *logit, const float *lt,
                                     const float *th, const double *lgt, Gathered *s, int64_t f) {
  return row_forward(x, mu, logit, lt, th, lgt, s, f, 1);
}

INLINE void row_backward(float g, const float *restrict x, const float *restrict mu, const float *restrict logit,
                                const float *restrict lt, const float *restrict th, const float *restrict dgt,
                                float *restrict d_mu, float *restrict d_logit, float *restrict d_lt, Gathered *s,
                                int64_t f, int zinb) {
#pragma omp simd
  for (int64_t j = 0; j < f; ++j) {
    float xv = x[j], m = mu[j], t = th[j];
    float inv = 1.0f / (t + m), ls = logf(t + m);
    float w = g;
    if (zinb) {
      float s0 = xv > 0.0f ? 0.0f : sigmoid_(logit[j] - t * (lt[j] - ls));  /* nb(0) = t (log t - log(t + mu)) */
      w = g * (1.0f - s0);
      d_logit[j] = g * (s0 - sigmoid_(logit[j]));
    }
    d_mu[j] = w * (xv / (m + EPS) - (t + xv) * inv);
    d_lt[j] += w * ((lt[j] - ls) + 1.0f - (t + xv) * inv);
  }
  /* theta-gradient of the gamma terms: g (digamma(x + theta) - digamma(theta)) at non-zero x */
  gather(x, s, f);
  const int32_t *restrict sj = s->sj, *restrict gj = s->j;
  float *restrict val = s->val;
  const int64_t n = s->n, ns = s->ns;
#pragma omp simd
  for (int64_t k = 0; k < ns; ++k) val[k] = g * small_digamma_diff(x[sj[k]], th[sj[k]]);
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) {
    float y = x[gj[k]] + th[gj[k]];
    val[ns + k] = g * (digamma_ge1(y + 1.0f) - 1.0f / y - dgt[gj[k]]);
  }
  for (int64_t k = 0; k < ns; ++k) d_lt[sj[k]] += val[k];
  for (int64_t k = 0; k < n; ++k) d_lt[gj[k]] += val[ns + k];
}

static void row_backward_nb(float g, const float *x, const float *mu, const float *lt, const float *th,
                                   const float *dgt, float *d_mu, float *d_lt, Gathered *s, int64_t f) {
  row_backward(g, x, mu, 0, lt, th, dgt, d_mu, 0, d_lt, s, f, 0);
}

static void row_backward_zinb(float g, const float *x, const float *mu, const float *logit, const float *lt,
                                     const float *th, const float *dgt, float *d_mu, float *d_logit, float *d_lt,
                                     Gathered *s, int64_t f) {
  row_backward(g, x, mu, logit, lt, th, dgt, d_mu, d_logit, d_lt, s, f, 1);
}

/* Per feature, in work: theta at [0, f), digamma(theta) at [f, 2f), lgamma(theta) as doubles from
   float 2f on (2f floats), then the gather lists (f + PAD int32 each) and scratch (f). work holds
   count_work_size(f) floats, 8-byte aligned. */
#define WORK_PER_FEATURE 7
static Gathered per_feature(const float *lt, float *work, int64_t f, int forward) {
  double *lgt = (double *)(work + 2 * f);
  for (int64_t j = 0; j < f; ++j) {
    float t = expf(lt[j]);
    work[j] = t;
    if (forward)
      lgt[j] = lgamma((double)t);  /* the forward pass needs lgamma(theta) only */
    else
      work[f + j] = digamma_ge1(t + 1.0f) - 1.0f / t;  /* the backward pass digamma(theta) only */
  }
  Gathered s = {(int32_t *)(work + 4 * f), (int32_t *)(work + 5 * f + PAD), work + 6 * f + 2 * PAD, 0, 0};
  return s;
}

int64_t count_work_size(int64_t f) { return WORK_PER_FEATURE * f + 2 * PAD; }

/* The per-sample log-likelihood from the decoder's raw output (b, ld) (ld = f for NB, 2 f for ZINB: mean logits at
   [0, f), zero logits at [f, 2 f)): mu = lib * softmax(mean logits) per row where lib is given,
   else exp(min(logit, 20)); mu (b, f) is written out for the backward pass. One pass in place of
   a softmax, a product with the library and the copies of each half of raw. */
static void row_mean(const float *restrict r, float lib, int has_lib, float *restrict mu, int64_t f) {
  if (!has_lib) {
#pragma omp simd
    for (int64_t j = 0; j < f; ++j) mu[j] = expf(fminf(r[j], 20.0f));
    return;
  }
  float top = -3.4e38f, total = 0.0f;  /* not -INFINITY: -ffast-math assumes finite values */
#pragma omp simd reduction(max : top)
  for (int64_t j = 0; j < f; ++j) top = fmaxf(top, r[j]);
#pragma omp simd reduction(+ : total)
  for (int64_t j = 0; j < f; ++j) {
    float e = expf(r[j] - top);
    mu[j] = e;
    total += e;
  }
  float c = lib / total;
#pragma omp simd
  for (int64_t j = 0; j < f; ++j) mu[j] *= c;
}

/* d (in: d mu, out: d mean logit) through row_mean: mu_j (d_j - sum_k mu_k d_k / lib) with a
   library (the softmax's Jacobian times lib), mu_j d_j below the clamp without one. */
static void row_mean_backward(const float *restrict r, const float *restrict mu, float lib, int has_lib,
                                     float *restrict d, int64_t f) {
  if (!has_lib) {
#pragma omp simd
    for (int64_t j = 0; j < f; ++j) d[j] = r[j] <= 20.0f ? mu[j] * d[j] : 0.0f;
    return;
  }
  float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
  for (int64_t j = 0; j < f; ++j) dot += mu[j] * d[j];
  float c = lib > 0.0f ? dot / lib : 0.0f;
#pragma omp simd
  for (int64_t j = 0; j < f; ++j) d[j] = mu[j] * (d[j] - c);
}

/* out[i] = sum_j log p(x_ij) from raw; lib (b) or NULL; mu (b, f) written. */
void count_forward_raw(const float *x, const float *raw, const float *lt, const float *lib, int64_t zinb,
                       float *mu, float *out, float *work, int64_t b, int64_t f) {
  Gathered s = per_feature(lt, work, f, 1);
  const double *lgt = (const double *)(work + 2 * f);
  const int64_t ld = zinb ? 2 * f : f;
  for (int64_t i = 0; i < b; ++i) {
    const float *r = raw + i * ld;
    row_mean(r, lib ? lib[i] : 0.0f, lib != 0, mu + i * f, f);
    out[i] = zinb ? row_forward_zinb(x + i * f, mu + i * f, r + f, lt, work, lgt, &s, f)
                  : row_forward_nb(x + i * f, mu + i * f, lt, work, lgt, &s, f);
  }
}

/* Gradients of sum_i grad[i] out[i]: d_raw (b, ld), in raw's layout, and d_lt (f). */
void count_backward_raw(const float *grad, const float *x, const float *raw, const float *mu, const float *lt,
                        const float *lib, int64_t zinb, float *d_raw, float *d_lt, float *work, int64_t b,
                        int64_t f) {
  Gathered s = per_feature(lt, work, f, 0);
  const int64_t ld = zinb ? 2 * f : f;
  for (int64_t j = 0; j < f; ++j) d_lt[j] = 0.0f;
  for (int64_t i = 0; i < b; ++i) {
    const float *r = raw + i * ld;
    float *d = d_raw + i * ld;
    if (zinb)
      row_backward_zinb(grad[i], x + i * f, mu + i * f, r + f, lt, work, work + f, d, d + f, d_lt, &s, f);
    else
      row_backward_nb(grad[i], x + i * f, mu + i * f, lt, work, work + f, d, d_lt, &s, f);
    row_mean_backward(r, mu + i * f, lib ? lib[i] : 0.0f, lib != 0, d, f);
  }
  for (int64_t j = 0; j < f; ++j) d_lt[j] *= work[j];
}
