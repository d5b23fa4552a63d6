/* Corrector fits in one pass per model: the loss and gradient of a small classifier, fused over
 * blocks of 64 images whose intermediates stay in the core's caches, inside the same L-BFGS as
 * neurodtco.correction.solvers.lbfgs.
 *
 * Built by neurodtco.correction.native with the system's C compiler (-O3 -march=native); the
 * fits fall back to the torch implementation where no compiler is found. Layouts are those of
 * neurodtco.correction.objective: each layer is a row-major matrix whose last column is its bias,
 * inputs are features-major [F + 1, N] with a last row of ones, parameters are flat [P].
 *
 * The image axis is the vector axis: every pass runs over NV vectors of VL images, so that a block
 * of intermediates ([h, B] hidden values, [C, B] logits) lives in registers or cache, and the
 * activation, softmax and cross-entropy cost a few vector instructions per value instead of a
 * sweep over memory each. exp, log and tanh are written here as vector polynomials (within a few
 * ulp of libm) because the C library's scalar calls would cost more than the products.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#ifndef VL
#define VL 8                 /* doubles per vector */
#endif
#ifndef NV
#define NV (64 / VL)         /* vectors per block */
#endif
#define BLOCK (VL * NV)      /* images per block */

typedef double vd __attribute__((vector_size(VL * sizeof(double))));
typedef int64_t vl __attribute__((vector_size(VL * sizeof(int64_t))));

enum { KIND_AFFINE = 0, KIND_LINEAR = 1, KIND_MLP = 2 };
enum { ACT_TANH = 0, ACT_RELU = 1, ACT_HARDTANH = 2 };

static inline vd splat(double x) { return (vd){} + x; }

/* Lanes of a where the comparison mask is set (all bits of a lane), else of b; casts between vector
 * types of one size reinterpret the bits. */
static inline vd vsel(vl mask, vd a, vd b) { return (vd)((mask & (vl)a) | (~mask & (vl)b)); }

static inline vd bits_to_vd(vl x) { return (vd)x; }

static inline vl vd_to_bits(vd x) { return (vl)x; }

static inline vd vabs(vd x) { return (vd)((vl)x & ((vl){} + 0x7fffffffffffffffLL)); }

/* |y| with the sign of x */
static inline vd vcopysign(vd y, vd x) { return (vd)((vl)vabs(y) | ((vl)x & ((vl){} + (int64_t)0x8000000000000000ULL))); }

#define LOG2E 0x1.71547652b82fep0
#define LN2_HI 0x1.62e42fefa39efp-1
#define LN2_LO 0x1.abc9e3b39803fp-56

#if defined(__AVX512F__) && VL == 8 && !defined(NEURODTCO_GENERIC)
/* One instruction each where AVX-512 has them: min, max, rounding, and scaling by a power of two. */
static inline vd vmax(vd a, vd b) { return (vd)_mm512_max_pd((__m512d)a, (__m512d)b); }

static inline vd vmin(vd a, vd b) { return (vd)_mm512_min_pd((__m512d)a, (__m512d)b); }

static inline vd vround(vd x) { return (vd)_mm512_roundscale_pd((__m512d)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

static inline vd vscale(vd v, vd k) { return (vd)_mm512_scalef_pd((__m512d)v, (__m512d)k); }
#else
static inline vd vmax(vd a, vd b) { return vsel(a > b, a, b); }

static inline vd vmin(vd a, vd b) { return vsel(a < b, a, b); }

/* to the nearest integer (ties to even) for |x| < 2^51: adding 1.5 * 2^52 leaves no fraction bits */
static inline vd vround(vd x) { return (x + splat(0x1.8p52)) - splat(0x1.8p52); }

/* v 2^k for integer-valued k in [-1022, 0] through the exponent bits of 2^k */
static inline vd vscale(vd v, vd k) {
    vl ki = __builtin_convertvector(k, vl);
    return v * bits_to_vd((ki + 1023) << 52);
}
#endif

/* e^x = 2^k (1 + q) for x in [-700, 0] (the softmax's shifted logits, tanh's argument): the
 * Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, and q = e^r - 1 by a degree-12 Taylor
 * polynomial without its constant term (truncation below 2e-16 relative). q keeps its relative
 * precision for small r, so that e^x - 1 = 2^k q + (2^k - 1) does too. */
static inline vd vexp_parts(vd x, vd *k) {
    *k = vround(x * splat(LOG2E));
    vd r = x - *k * splat(LN2_HI);
    r -= *k * splat(LN2_LO);
    vd p = splat(1.0 / 479001600.0);
    p = p * r + splat(1.0 / 39916800.0);
    p = p * r + splat(1.0 / 3628800.0);
    p = p * r + splat(1.0 / 362880.0);
    p = p * r + splat(1.0 / 40320.0);
    p = p * r + splat(1.0 / 5040.0);
    p = p * r + splat(1.0 / 720.0);
    p = p * r + splat(1.0 / 120.0);
    p = p * r + splat(1.0 / 24.0);
    p = p * r + splat(1.0 / 6.0);
    p = p * r + splat(0.5);
    p = p * r + splat(1.0);
    return p * r;
}

/* e^x for x <= 0; below -700 as at -700, which no sum with a term of 1 can tell from zero. */
static inline vd vexp_nonpositive(vd x) {
    vd k, q = vexp_parts(vmax(x, splat(-700.0)), &k);
    return vscale(q + splat(1.0), k);
}

/* log(x) for x >= 1 (a softmax's sum of exponentials about its largest term): the exponent, and
 * 2 atanh(s) of the mantissa brought to [sqrt(1/2), sqrt(2)), s = (m - 1)/(m + 1), |s| <= 0.172. */
static inline vd vlog_atleast1(vd x) {
    vl bits = vd_to_bits(x);
    vl e = (bits >> 52) - 1023;
    vd m = bits_to_vd((bits & 0x000fffffffffffffLL) | 0x3ff0000000000000LL);
    vl big = m > splat(1.4142135623730951);
    m = vsel(big, m * splat(0.5), m);
    e -= big;  /* a true comparison is -1 in every bit */
    vd s = (m - splat(1.0)) / (m + splat(1.0));
    vd s2 = s * s;
    vd p = splat(2.0 / 23.0);
    p = p * s2 + splat(2.0 / 21.0);
    p = p * s2 + splat(2.0 / 19.0);
    p = p * s2 + splat(2.0 / 17.0);
    p = p * s2 + splat(2.0 / 15.0);
    p = p * s2 + splat(2.0 / 13.0);
    p = p * s2 + splat(2.0 / 11.0);
    p = p * s2 + splat(2.0 / 9.0);
    p = p * s2 + splat(2.0 / 7.0);
    p = p * s2 + splat(2.0 / 5.0);
    p = p * s2 + splat(2.0 / 3.0);
    p = p * s2 + splat(2.0);
    vd ed = __builtin_convertvector(e, vd);
    return ed * splat(0x1.62e42fefa39efp-1) + (s * p + ed * splat(0x1.abc9e3b39803fp-56));
}

/* tanh |x| = m / (-2 - m) with m = e^(-2|x|) - 1, and the sign of x: within a few ulp, small x included. */
static inline vd vtanh(vd x) {
    vd k, q = vexp_parts(vmax(splat(-2.0) * vabs(x), splat(-700.0)), &k);
    vd m = vscale(q, k) + (vscale(splat(1.0), k) - splat(1.0));
    return vcopysign(m / (splat(-2.0) - m), x);
}

/* out[r] = bias[r] + sum_i W(r, i) in[i] for r < rows, over a block of images: W(r, i) = w[r rs + i is],
 * bias[r] = w[r rs + bias_at], in[i] = in + i in_stride (vectors), out[r] = out + r NV. Two rows at a
 * time, so that each input vector loaded feeds two multiply-adds. */
static inline void rows_times_block(int rows, int inputs, const double *w, int rs, int is, int bias_at,
                                    const vd *in, int in_stride, vd *out) {
    int r = 0;
    for (; r + 1 < rows; r += 2) {
        vd a0[NV], a1[NV];
        const vd b0 = splat(bias_at < 0 ? 0.0 : w[r * rs + bias_at]);
        const vd b1 = splat(bias_at < 0 ? 0.0 : w[(r + 1) * rs + bias_at]);
        for (int v = 0; v < NV; v++) a0[v] = b0, a1[v] = b1;
        for (int i = 0; i < inputs; i++) {
            const vd w0 = splat(w[r * rs + i * is]), w1 = splat(w[(r + 1) * rs + i * is]);
            const vd *x = in + (size_t)i * in_stride;
            for (int v = 0; v < NV; v++) {
                a0[v] += w0 * x[v];
                a1[v] += w1 * x[v];
            }
        }
        for (int v = 0; v < NV; v++) out[r * NV + v] = a0[v], out[(r + 1) * NV + v] = a1[v];
    }
    for (; r < rows; r++) {
        vd a0[NV];
        const vd b0 = splat(bias_at < 0 ? 0.0 : w[r * rs + bias_at]);
        for (int v = 0; v < NV; v++) a0[v] = b0;
        for (int i = 0; i < inputs; i++) {
            const vd w0 = splat(w[r * rs + i * is]);
            const vd *x = in + (size_t)i * in_stride;
            for (int v = 0; v < NV; v++) a0[v] += w0 * x[v];
        }
        for (int v = 0; v < NV; v++) out[r * NV + v] = a0[v];
    }
}

/* acc[r (inputs + 1) + i] += sum_v g[r][v] in[i][v] for r < rows, i < inputs, and the bias column
 * acc[r (inputs + 1) + inputs] += sum_v g[r][v]: the weight gradients' products over a block of
 * images, into per-lane sums. g[r] = g + r NV, in[i] = in + i in_stride. Two rows at a time, each
 * with two chains of multiply-adds (half the latency of one). */
static inline void accumulate_block(int rows, int inputs, const vd *g, const vd *in, int in_stride, vd *acc) {
    const int as = inputs + 1;
    int r = 0;
    for (; r + 1 < rows; r += 2) {
        vd g0[NV], g1[NV];  /* local copies stay in registers: the stores below cannot alias them */
        vd s0 = splat(0.0), s1 = splat(0.0);
        for (int v = 0; v < NV; v++) {
            s0 += g0[v] = g[r * NV + v];
            s1 += g1[v] = g[(r + 1) * NV + v];
        }
        acc[r * as + inputs] += s0;
        acc[(r + 1) * as + inputs] += s1;
        for (int i = 0; i < inputs; i++) {
            const vd *x = in + (size_t)i * in_stride;
            vd p0 = g0[0] * x[0], q0 = g0[1] * x[1], p1 = g1[0] * x[0], q1 = g1[1] * x[1];
            for (int v = 2; v < NV; v += 2) {
                p0 += g0[v] * x[v];
                q0 += g0[v + 1] * x[v + 1];
                p1 += g1[v] * x[v];
                q1 += g1[v + 1] * x[v + 1];
            }
            acc[r * as + i] += p0 + q0;
            acc[(r + 1) * as + i] += p1 + q1;
        }
    }
    for (; r < rows; r++) {
        vd g0[NV];
        vd s0 = splat(0.0);
        for (int v = 0; v < NV; v++) s0 += g0[v] = g[r * NV + v];
        acc[r * as + inputs] += s0;
        for (int i = 0; i < inputs; i++) {
            const vd *x = in + (size_t)i * in_stride;
            vd p0 = g0[0] * x[0], q0 = g0[1] * x[1];
            for (int v = 2; v < NV; v += 2) {
                p0 += g0[v] * x[v];
                q0 += g0[v + 1] * x[v + 1];
            }
            acc[r * as + i] += p0 + q0;
        }
    }
}

/* The softmax cross-entropy of one vector of images (logits lg[k NV], k < c, labels y, weights w):
 * dlogits (softmax - onehot) w into g[k NV]; subtracts w times the label's shifted logit from *loss
 * and multiplies each sum of exponentials (>= 1; 1 on padding) into *prod, whose log the caller
 * takes once per block: a log per image would cost more than its ten exponentials' share. */
static inline __attribute__((always_inline)) void softmax_vector(const int c, const vd *lg, vd *g, const vd y,
                                                                 const vd w, vd *loss, vd *prod) {
    vd top = lg[0];
    for (int k = 1; k < c; k++) top = vmax(top, lg[k * NV]);
    vd total = splat(0.0), picked = splat(0.0);
    for (int k = 0; k < c; k++) {
        const vd l = lg[k * NV] - top;
        const vd e = vexp_nonpositive(l);
        total += e;
        g[k * NV] = e;
        picked += vsel(y == splat((double)k), l, splat(0.0));
    }
    const vd scale = w / total;
    for (int k = 0; k < c; k++) g[k * NV] = g[k * NV] * scale - vsel(y == splat((double)k), w, splat(0.0));
    *loss -= w * picked;
    *prod *= vsel(w > splat(0.0), total, splat(1.0));
}

/* One model's data and scratch: inputs padded to whole blocks, the padded images weighted 0. */
typedef struct {
    int kind, act, f1, c, h, nb;  /* f1: features + 1 (the ones row); nb: blocks */
    const double *x;               /* [f1, nb * BLOCK] */
    const double *y;               /* [nb * BLOCK]: the labels as numbers, -1 on padding */
    const double *w;               /* [nb * BLOCK]: 1/N, or 0 on padding */
    double inv_n;                  /* 1/N */
    double *hid, *pre, *dz, *logit, *glog, *acc;  /* [h, BLOCK] three times (pre then takes dz), [c, BLOCK] twice, lanes of each gradient */
    const double *mask;            /* [P] 1 on penalised weights, or NULL */
    double decay;
    int p;
} Model;

/* Loss and gradient (written to grad [P]) at theta [P]. */
static double evaluate(const Model *m, const double *theta, double *grad) {
    const int f1 = m->f1, c = m->c, h = m->h, stride = m->nb * BLOCK;
    const int rows = m->kind == KIND_MLP ? h : 0;
    const double *w1 = theta, *w2 = theta + rows * f1;  /* MLP: [h, f1], [c, h + 1]; else w2 is the only layer */
    vd *acc1 = (vd *)m->acc, *acc2 = acc1 + rows * f1;   /* lanes of the gradients, summed at the end */
    memset(m->acc, 0, sizeof(vd) * (size_t)m->p);
    vd loss = splat(0.0);
    vd *logit = (vd *)m->logit, *glog = (vd *)m->glog;
    for (int b = 0; b < m->nb; b++) {
        const double *xb = m->x + (size_t)b * BLOCK;
        const vd *wb = (const vd *)(m->w + (size_t)b * BLOCK);
        const vd *yv = (const vd *)(m->y + (size_t)b * BLOCK);
        /* forward to the logits [c, BLOCK] */
        if (m->kind == KIND_MLP) {
            vd *hid = (vd *)m->hid, *pre = (vd *)m->pre;
            rows_times_block(h, f1 - 1, w1, f1, 1, f1 - 1, (const vd *)xb, stride / VL, pre);
            for (int i = 0; i < h * NV; i++)
                hid[i] = m->act == ACT_TANH ? vtanh(pre[i])
                         : m->act == ACT_RELU ? vmax(pre[i], splat(0.0))
                         : vmin(vmax(pre[i], splat(-1.0)), splat(1.0));
            rows_times_block(c, h, w2, h + 1, 1, h, hid, NV, logit);
        } else if (m->kind == KIND_LINEAR) {
            rows_times_block(c, f1 - 1, w2, f1, 1, f1 - 1, (const vd *)xb, stride / VL, logit);
        } else {  /* affine: logit k = gain_k v_k + offset_k */
            for (int k = 0; k < c; k++) {
                const vd g = splat(w2[2 * k]), o = splat(w2[2 * k + 1]);
                const vd *xr = (const vd *)(xb + (size_t)k * stride);
                for (int v = 0; v < NV; v++) logit[k * NV + v] = g * xr[v] + o;
            }
        }
        /* softmax cross-entropy about each image's largest logit, into dlogits [c, BLOCK] */
        vd prod = splat(1.0);
        if (c == 10) {  /* the common case with its class loop unrolled: the logits stay in registers */
            for (int v = 0; v < NV; v++) softmax_vector(10, logit + v, glog + v, yv[v], wb[v], &loss, &prod);
        } else {
            for (int v = 0; v < NV; v++) softmax_vector(c, logit + v, glog + v, yv[v], wb[v], &loss, &prod);
        }
        loss += splat(m->inv_n) * vlog_atleast1(prod);
        /* gradient of the last (or only) layer */
        if (m->kind == KIND_MLP) {
            const vd *hid = (const vd *)m->hid;
            accumulate_block(c, h, glog, hid, NV, acc2);
            /* back through the activation: dz [h, BLOCK] takes pre's memory, da = W2^T dlogits passes through dz first */
            vd *pre = (vd *)m->pre, *dz = (vd *)m->dz;
            rows_times_block(h, c, w2, 1, h + 1, -1, glog, NV, dz);
            const vd zero = splat(0.0);
            for (int i = 0; i < h * NV; i++) {
                const vd hv = hid[i], pv = pre[i], da = dz[i];
                pre[i] = m->act == ACT_TANH ? da * (splat(1.0) - hv * hv)
                         : m->act == ACT_RELU ? vsel(pv > zero, da, zero)
                         : vsel((pv < splat(-1.0)) | (pv > splat(1.0)), zero, da);
            }
            accumulate_block(h, f1 - 1, pre, (const vd *)xb, stride / VL, acc1);
        } else if (m->kind == KIND_LINEAR) {
            accumulate_block(c, f1 - 1, glog, (const vd *)xb, stride / VL, acc2);
        } else {
            for (int k = 0; k < c; k++) {
                const vd *xr = (const vd *)(xb + (size_t)k * stride);
                vd sg = acc2[2 * k], so = acc2[2 * k + 1];
                for (int v = 0; v < NV; v++) {
                    sg += glog[k * NV + v] * xr[v];
                    so += glog[k * NV + v];
                }
                acc2[2 * k] = sg;
                acc2[2 * k + 1] = so;
            }
        }
    }
    const vd *lanes = (const vd *)m->acc;
    for (int i = 0; i < m->p; i++) {
        double s = 0.0;
        for (int l = 0; l < VL; l++) s += lanes[i][l];
        grad[i] = s;
    }
    double value = 0.0;
    for (int l = 0; l < VL; l++) value += loss[l];
    if (m->mask) {
        double penalty = 0.0;
        for (int i = 0; i < m->p; i++) {
            const double wi = theta[i] * m->mask[i];
            penalty += wi * wi;
            grad[i] += m->decay * wi;
        }
        value += 0.5 * m->decay * penalty;
    }
    return value;
}

static double dot(const double *a, const double *b, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* L-BFGS with a backtracking (Armijo) line search, as solvers.lbfgs runs it for each model.
 * Writes the starting loss, then the loss after every 50th iteration, into history (n_history
 * slots; the frozen value once the model stops) and the last loss into *final; returns the loop
 * index at which the model stopped; *iterations counts accepted steps. */
static int lbfgs(const Model *m, double *theta, int max_iter, double tol, int memory, double *history,
                 int n_history, int64_t *iterations, double *evaluations, double *final, double *scratch) {
    const int p = m->p;
    double *grad = scratch, *q = grad + p, *trial = q + p, *tgrad = trial + p;
    double *s_hist = tgrad + p, *y_hist = s_hist + (size_t)memory * p, *rho = y_hist + (size_t)memory * p;
    double *alpha = rho + memory;
    const double tiny = 2.2250738585072014e-308;
    double value = evaluate(m, theta, grad), gamma = 1.0;
    *evaluations += 1.0;
    int stopped = max_iter, slot_hist = 0;
    if (slot_hist < n_history) history[slot_hist++] = value;
    for (int i = 0; i < memory; i++) rho[i] = 0.0;
    *iterations = 0;
    for (int it = 0; it < max_iter; it++) {
        double gmax = 0.0;
        for (int i = 0; i < p; i++) gmax = fmax(gmax, fabs(grad[i]));
        if (!(gmax > tol)) { stopped = it; break; }
        const int used = it < memory ? it : memory;
        memcpy(q, grad, sizeof(double) * p);
        for (int jj = 0; jj < used; jj++) {
            const int j = ((it - 1 - jj) % memory + memory) % memory;
            const double a = dot(s_hist + (size_t)j * p, q, p) * rho[j];
            const double *yj = y_hist + (size_t)j * p;
            for (int i = 0; i < p; i++) q[i] -= a * yj[i];
            alpha[jj] = a;
        }
        for (int i = 0; i < p; i++) q[i] *= gamma;
        for (int jj = used - 1; jj >= 0; jj--) {
            const int j = ((it - 1 - jj) % memory + memory) % memory;
            const double b = dot(y_hist + (size_t)j * p, q, p) * rho[j];
            const double *sj = s_hist + (size_t)j * p;
            const double a = alpha[jj] - b;
            for (int i = 0; i < p; i++) q[i] += a * sj[i];
        }
        for (int i = 0; i < p; i++) q[i] = -q[i];  /* the direction */
        double slope = dot(grad, q, p);
        if (slope >= 0) {  /* lost curvature information: steepest descent */
            for (int i = 0; i < p; i++) q[i] = -grad[i];
            slope = -dot(grad, grad, p);
        }
        double t = 1.0;
        if (it == 0) {
            double g1 = 0.0;
            for (int i = 0; i < p; i++) g1 += fabs(grad[i]);
            t = fmin(1.0 / g1, 1.0);
        }
        double step = 0.0, new_value = value;
        for (int trial_no = 0; trial_no < 40; trial_no++) {
            for (int i = 0; i < p; i++) trial[i] = theta[i] + t * q[i];
            const double v = evaluate(m, trial, tgrad);
            *evaluations += 1.0;
            if (v <= value + 1e-4 * t * slope) { step = t; new_value = v; break; }
            t *= 0.5;
        }
        if (!(step > 0)) {  /* no step lowers the loss: at the optimum within rounding */
            if (it % 50 == 0 && slot_hist < n_history) history[slot_hist++] = value;
            stopped = it + 1;
            break;
        }
        const int slot = it % memory;
        double *sv = s_hist + (size_t)slot * p, *yv = y_hist + (size_t)slot * p;
        for (int i = 0; i < p; i++) {
            const double nt = theta[i] + step * q[i];
            sv[i] = nt - theta[i];
            yv[i] = tgrad[i] - grad[i];
            theta[i] = nt;
        }
        const double sy = dot(sv, yv, p);
        if (sy > tiny) {
            rho[slot] = 1.0 / sy;
            gamma = sy / fmax(dot(yv, yv, p), tiny);
        } else {
            rho[slot] = 0.0;
        }
        memcpy(grad, tgrad, sizeof(double) * p);
        value = new_value;
        *iterations += 1;
        if (it % 50 == 0 && slot_hist < n_history) history[slot_hist++] = value;
    }
    while (slot_hist < n_history) history[slot_hist++] = value;
    *final = value;
    return stopped;
}

/* Parameters of one model, in the layout above: an MLP's [h, f1] then [c, h + 1]; one linear layer
 * [c, f1]; or an affine calibration's [c, 2]. */
static int n_params(int kind, int f1, int h, int c) {
    return (kind == KIND_MLP ? h * f1 : 0) + c * (kind == KIND_AFFINE ? 2 : (kind == KIND_LINEAR ? f1 : h + 1));
}

/* A model's buffers: its inputs padded to whole blocks, labels, weights, the block's intermediates
 * and the gradient lanes, then `extra` doubles for the caller. Returns the memory to free (NULL if
 * none could be had); load_model fills in one model's inputs. */
static double *new_model(Model *m, int kind, int act, int f1, int n, int h, int c, size_t extra, double **rest) {
    const int nb = (n + BLOCK - 1) / BLOCK, np = nb * BLOCK, hh = h > 0 ? h : 1;
    const int p = n_params(kind, f1, h, c);
    const size_t doubles = (size_t)f1 * np + 2 * (size_t)np + 3 * (size_t)hh * BLOCK + 2 * (size_t)c * BLOCK
                           + (size_t)VL * p + extra;
    double *mem = aligned_alloc(64, ((doubles * sizeof(double) + 63) / 64) * 64);
    if (!mem) return NULL;
    double *xp = mem, *yp = xp + (size_t)f1 * np, *wp = yp + np, *hid = wp + np;
    double *pre = hid + (size_t)hh * BLOCK, *dz = pre + (size_t)hh * BLOCK, *glog = dz + (size_t)hh * BLOCK;
    double *logit = glog + (size_t)c * BLOCK, *acc = logit + (size_t)c * BLOCK;
    *rest = acc + (size_t)VL * p;
    for (int i = 0; i < np; i++) wp[i] = i < n ? 1.0 / n : 0.0;
    *m = (Model){kind, act, f1, c, h, nb, xp, yp, wp, 1.0 / n, hid, pre, dz, logit, glog, acc, NULL, 0.0, p};
    return mem;
}

static void load_model(Model *m, int n, const double *x, const int64_t *y) {
    const int np = m->nb * BLOCK;
    double *xp = (double *)m->x, *yp = (double *)m->y;
    for (int f = 0; f < m->f1; f++) {
        memcpy(xp + (size_t)f * np, x + (size_t)f * n, sizeof(double) * n);
        for (int i = n; i < np; i++) xp[(size_t)f * np + i] = 0.0;
    }
    for (int i = 0; i < np; i++) yp[i] = i < n ? (double)y[i] : -1.0;  /* -1: padding, no class */
}

/* Fit k models. x [k, f1, n] (last row ones), y [k, n], theta [k, p] in and out, mask [p] or NULL;
 * history [k, n_history], iterations [k], stopped [k], final_loss [k]; returns the objective
 * evaluations summed over the models, or -1 if memory ran out. */
double neurodtco_fit(int kind, int act, int k, int f1, int n, int h, int c, const double *x, const int64_t *y,
                     double *theta, const double *mask, double decay, int max_iter, double tol, int memory,
                     double *history, int n_history, int64_t *iterations, int64_t *stopped, double *final_loss) {
    Model m;
    double *scratch;
    const int p = n_params(kind, f1, h, c);
    double *mem = new_model(&m, kind, act, f1, n, h, c, 4 * (size_t)p + 2 * (size_t)memory * p + 2 * (size_t)memory,
                            &scratch);
    if (!mem) return -1.0;
    m.mask = mask;
    m.decay = decay;
    double evaluations = 0.0;
    for (int km = 0; km < k; km++) {
        load_model(&m, n, x + (size_t)km * f1 * n, y + (size_t)km * n);
        double ev = 0.0;
        stopped[km] = lbfgs(&m, theta + (size_t)km * p, max_iter, tol, memory, history + (size_t)km * n_history,
                            n_history, iterations + km, &ev, final_loss + km, scratch);
        evaluations += ev;
    }
    free(mem);
    return evaluations;
}

/* The loss and gradient of one model at theta (repeated `repeats` times, for timing), for tests
 * against an independent implementation and for benchmarks. */
double neurodtco_objective(int kind, int act, int f1, int n, int h, int c, const double *x, const int64_t *y,
                           const double *theta, const double *mask, double decay, double *grad, int repeats) {
    Model m;
    double *rest;
    double *mem = new_model(&m, kind, act, f1, n, h, c, 0, &rest);
    if (!mem) return NAN;
    m.mask = mask;
    m.decay = decay;
    load_model(&m, n, x, y);
    double value = NAN;
    for (int r = 0; r < repeats; r++) value = evaluate(&m, theta, grad);
    free(mem);
    return value;
}
