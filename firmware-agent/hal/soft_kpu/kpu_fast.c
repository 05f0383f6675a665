/* SPDX-License-Identifier: MIT */
/*
 * The fast K210_CONV emulation. Same arithmetic as kpu_naive.c (kmodel-facts.md
 * §3.3-§3.4), restructured:
 *
 *  1. gather the input channels once into dense uint8 planes; for 3x3 kernels the planes
 *     get a one-pixel border of pad_value, so every tap is a plain shifted row;
 *  2. the convolution S is a matrix product over "tap rows": a 3x3 conv on a (W+2)-wide
 *     padded grid is a 1x1 conv over C*9 shifted views of the planes. It runs as int32
 *     multiply-accumulate on blocks of 4 output channels x 16 pixels (AVX2 pmaddwd on
 *     x86-64 when the CPU has it, portable C otherwise); 8-bit weights keep every partial
 *     sum below 2^31 (1024*9 taps * 255 * 255 < 2^31);
 *  3. Sx (sum of input taps) is the same for every output channel of a normal conv, so it
 *     is computed once per layer with running sums; Sw is a per-channel constant;
 *  4. batch-norm, activation and pooling run per output channel on the int32 sums, in
 *     int64 where the ranges need it.
 *
 * Layers it does not cover (16-bit weights, sizes beyond its static scratch) go to the
 * naive path, counted by kfa_soft_kpu_fallbacks().
 */
#include <string.h>

#include "hal/soft_kpu/soft_kpu.h"
#include "hal/soft_kpu/soft_kpu_int.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FAST_HAVE_AVX2_KERNEL 1
#endif

#ifndef KFA_SOFT_KPU_GRID_MAX
#define KFA_SOFT_KPU_GRID_MAX (1u << 18) /* conv grid pixels H*(W+2) the scratch holds */
#endif
#ifndef KFA_SOFT_KPU_PLANES_MAX
#define KFA_SOFT_KPU_PLANES_MAX (4u << 20) /* bytes of gathered input planes */
#endif

#define OCB 4u          /* output channels per GEMM block */
#define PXB 16u         /* pixels per GEMM step */
#define PLANE_SLACK 64u /* readable bytes past each plane: the last 16-pixel step and taps */
#define MAX_TAPS (1024u * 9u)

static uint8_t planes[KFA_SOFT_KPU_PLANES_MAX + PLANE_SLACK];
static uint8_t zero_row[KFA_SOFT_KPU_GRID_MAX + PLANE_SLACK];
static const uint8_t *rows[MAX_TAPS + 1];
static int32_t accbuf[OCB][KFA_SOFT_KPU_GRID_MAX + PXB];
static int32_t colsum[KFA_SOFT_KPU_GRID_MAX + PLANE_SLACK];
static int32_t sxbuf[KFA_SOFT_KPU_GRID_MAX + PXB];
static int64_t txbuf[KFA_SOFT_KPU_GRID_MAX + PXB];
static uint8_t actplane[KFA_SOFT_KPU_GRID_MAX];
static int16_t wblock[OCB][MAX_TAPS + 2];
static uint32_t fallbacks;

uint32_t kfa_soft_kpu_fallbacks(void)
{
    return fallbacks;
}

/* ---- per-channel batch-norm and activation --------------------------------------- */

struct chan {
    int64_t mul, add; /* batch-norm (§3.2) */
    uint32_t nsh;
    uint32_t nseg;                      /* segments kept, in ascending x_start order */
    int64_t xs[KFA_KPU_ACT_SEGMENTS];   /* x_start */
    int64_t ym[KFA_KPU_ACT_SEGMENTS];   /* y_mul */
    uint32_t sh[KFA_KPU_ACT_SEGMENTS];  /* shift_number, clamped */
    int64_t bias[KFA_KPU_ACT_SEGMENTS]; /* result_bias */
    int sorted;                         /* x_start ascending: first match from the top */
};

static int64_t wmul(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a * (uint64_t)b);
}

static int64_t wadd(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static void chan_init(struct chan *ch, const uint8_t *bn, const uint8_t *act)
{
    uint64_t b = kfa_ld_u64le(bn);
    ch->mul = kfa_kpu_sext(kfa_kpu_bits(b, 0, 24), 24);
    ch->add = kfa_kpu_sext(kfa_kpu_bits(b, 24, 32), 32);
    ch->nsh = (uint32_t)kfa_kpu_bits(b, 56, 4);
    ch->nseg = KFA_KPU_ACT_SEGMENTS;
    ch->sorted = 1;
    for (uint32_t i = 0; i < KFA_KPU_ACT_SEGMENTS; i++) {
        uint64_t s = kfa_ld_u64le(act + 8u * i);
        uint32_t sh = (uint32_t)kfa_kpu_bits(s, 0, 8);
        ch->sh[i] = sh > SOFT_KPU_MAX_SHIFT ? SOFT_KPU_MAX_SHIFT : sh;
        ch->ym[i] = kfa_kpu_sext(kfa_kpu_bits(s, 8, 16), 16);
        ch->xs[i] = kfa_kpu_sext(kfa_kpu_bits(s, 24, 36), 36);
        ch->bias[i] = act[128 + i];
        if (i && ch->xs[i] < ch->xs[i - 1])
            ch->sorted = 0;
    }
}

static inline int64_t round_shift(int64_t v, uint32_t s, enum kfa_rounding rounding)
{
    if (s == 0)
        return v;
    if (rounding == KFA_ROUND_HALF_UP) {
        v >>= s - 1u;
        if (v & 1)
            return v < 0 ? (v >> 1) - 1 : (v >> 1) + 1;
        return v >> 1;
    }
    int64_t integral = v >> s;
    uint64_t frac = (uint64_t)v & ((1ull << s) - 1u), half = 1ull << (s - 1u);
    if (frac < half)
        return integral;
    int64_t sign = v < 0 ? -1 : 1;
    if (frac > half)
        return integral + sign;
    return (integral & 1) ? integral + sign : integral;
}

static inline uint8_t post(const struct chan *ch, int64_t acc, enum kfa_rounding rounding)
{
    int64_t v = wadd(wmul(acc, ch->mul) >> ch->nsh, ch->add);
    uint32_t seg = 0;
    if (ch->sorted) {
        /* Ascending x_start: the last match is found by a branch-free binary search. */
        uint32_t i = 0;
        for (uint32_t step = KFA_KPU_ACT_SEGMENTS / 2; step; step /= 2)
            i += (ch->xs[i + step] < v) ? step : 0;
        seg = i; /* xs[0] may not be < v: the naive rule then picks segment 0 too */
    } else {
        for (uint32_t i = KFA_KPU_ACT_SEGMENTS; i-- > 0;)
            if (ch->xs[i] < v) {
                seg = i;
                break;
            }
    }
    int64_t out = round_shift(wmul(wadd(v, -ch->xs[seg]), ch->ym[seg]), ch->sh[seg], rounding);
    out = wadd(out, ch->bias[seg]);
    return (uint8_t)(out < 0 ? 0 : out > 255 ? 255 : out);
}

/* ---- GEMM over tap rows ------------------------------------------------------------ */

/* acc[o][q] = sum_k w[o][k] * rows[k][q] for q in [0, n) rounded up to PXB; K even. */
static void gemm_generic(uint32_t K, size_t n)
{
    for (size_t q0 = 0; q0 < n; q0 += PXB) {
        int32_t a[OCB][PXB];
        memset(a, 0, sizeof a);
        for (uint32_t k = 0; k < K; k++) {
            const uint8_t *r = rows[k] + q0;
            for (uint32_t o = 0; o < OCB; o++) {
                int32_t w = wblock[o][k];
                for (uint32_t j = 0; j < PXB; j++)
                    a[o][j] += w * r[j];
            }
        }
        for (uint32_t o = 0; o < OCB; o++)
            memcpy(&accbuf[o][q0], a[o], sizeof a[o]);
    }
}

#ifdef FAST_HAVE_AVX2_KERNEL
__attribute__((target("avx2"))) static void gemm_avx2(uint32_t K, size_t n)
{
    static int32_t wp[OCB][MAX_TAPS / 2 + 1];
    for (uint32_t o = 0; o < OCB; o++)
        for (uint32_t p = 0; p < K / 2; p++)
            wp[o][p] = (int32_t)((uint32_t)(uint16_t)wblock[o][2 * p] |
                                 (uint32_t)(uint16_t)wblock[o][2 * p + 1] << 16);
    for (size_t q0 = 0; q0 < n; q0 += PXB) {
        __m256i a0l = _mm256_setzero_si256(), a0h = a0l, a1l = a0l, a1h = a0l, a2l = a0l, a2h = a0l,
                a3l = a0l, a3h = a0l;
        for (uint32_t p = 0; p < K / 2; p++) {
            __m256i xa = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(rows[2 * p] + q0)));
            __m256i xb =
                _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(rows[2 * p + 1] + q0)));
            /* lo: pixels 0-3 | 8-11, hi: 4-7 | 12-15, each as (a, b) pairs */
            __m256i lo = _mm256_unpacklo_epi16(xa, xb), hi = _mm256_unpackhi_epi16(xa, xb);
            __m256i w0 = _mm256_set1_epi32(wp[0][p]), w1 = _mm256_set1_epi32(wp[1][p]);
            __m256i w2 = _mm256_set1_epi32(wp[2][p]), w3 = _mm256_set1_epi32(wp[3][p]);
            a0l = _mm256_add_epi32(a0l, _mm256_madd_epi16(lo, w0));
            a0h = _mm256_add_epi32(a0h, _mm256_madd_epi16(hi, w0));
            a1l = _mm256_add_epi32(a1l, _mm256_madd_epi16(lo, w1));
            a1h = _mm256_add_epi32(a1h, _mm256_madd_epi16(hi, w1));
            a2l = _mm256_add_epi32(a2l, _mm256_madd_epi16(lo, w2));
            a2h = _mm256_add_epi32(a2h, _mm256_madd_epi16(hi, w2));
            a3l = _mm256_add_epi32(a3l, _mm256_madd_epi16(lo, w3));
            a3h = _mm256_add_epi32(a3h, _mm256_madd_epi16(hi, w3));
        }
#define STORE_OC(o, l, h)                                                                          \
    _mm256_storeu_si256((__m256i *)&accbuf[o][q0], _mm256_permute2x128_si256(l, h, 0x20));         \
    _mm256_storeu_si256((__m256i *)&accbuf[o][q0 + 8], _mm256_permute2x128_si256(l, h, 0x31))
        STORE_OC(0, a0l, a0h);
        STORE_OC(1, a1l, a1h);
        STORE_OC(2, a2l, a2h);
        STORE_OC(3, a3l, a3h);
#undef STORE_OC
    }
}

static int have_avx2(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return cached;
}
#endif

static void gemm(uint32_t K, size_t n)
{
#ifdef FAST_HAVE_AVX2_KERNEL
    if (have_avx2()) {
        gemm_avx2(K, n);
        return;
    }
#endif
    gemm_generic(K, n);
}

/* ---- the layer ----------------------------------------------------------------------- */

struct geo {
    uint32_t C, H, W, k, Wp, Hp; /* input, kernel, padded grid */
    size_t ps;                   /* plane stride in planes[] */
    size_t n;                    /* conv grid pixels H * Wp */
};

/* Dense (3x3: bordered) planes of every input channel. */
static void gather(const struct kfa_kpu_layer *l, const struct geo *g, const uint8_t *ram)
{
    uint32_t b = g->k == 3 ? 1u : 0u;
    for (uint32_t c = 0; c < g->C; c++) {
        uint8_t *p = planes + c * g->ps;
        if (b)
            memset(p, (int)l->pad_value, (size_t)g->Hp * g->Wp);
        for (uint32_t y = 0; y < g->H; y++)
            memcpy(p + (size_t)(y + b) * g->Wp + b, ram + kfa_kpu_map_offset(&l->in, c, y, 0),
                   g->W);
        memset(p + (size_t)g->Hp * g->Wp, 0, g->ps - (size_t)g->Hp * g->Wp);
    }
}

/* Offsets of the k*k taps of grid pixel q = y*Wp + x inside a plane. */
static void tap_offsets(const struct geo *g, size_t *off)
{
    for (uint32_t ky = 0; ky < g->k; ky++)
        for (uint32_t kx = 0; kx < g->k; kx++)
            off[ky * g->k + kx] = (size_t)ky * g->Wp + kx;
}

/* sx[q] = sum of the taps of pixel q over channels [c0, c1); running sums over rows. */
static void tap_sums(const struct geo *g, uint32_t c0, uint32_t c1, int32_t *sx)
{
    size_t area = (size_t)g->Hp * g->Wp;
    memset(colsum, 0, (area + PLANE_SLACK) * sizeof colsum[0]);
    for (uint32_t c = c0; c < c1; c++) {
        const uint8_t *p = planes + c * g->ps;
        for (size_t j = 0; j < area; j++)
            colsum[j] += p[j];
    }
    if (g->k == 1) {
        memcpy(sx, colsum, g->n * sizeof sx[0]);
        return;
    }
    /*
     * 3x3 box sum: vertical then horizontal, on the padded grid. The horizontal pass is
     * in place and forward, so sx[q+1] and sx[q+2] are still the vertical sums when read;
     * near q = n it reads stale entries, but only for the two grid columns x >= W that
     * nobody uses.
     */
    for (size_t q = 0; q < g->n; q++)
        sx[q] = colsum[q] + colsum[q + g->Wp] + colsum[q + 2u * g->Wp];
    for (size_t q = 0; q < g->n; q++)
        sx[q] = sx[q] + sx[q + 1] + sx[q + 2];
}

/* Activation plane (H x W, dense) of one output channel from S, tx and a constant. */
static void post_plane(const struct geo *g, const struct chan *ch, const int32_t *s,
                       const int64_t *tx, int64_t cst, enum kfa_rounding rounding)
{
    uint8_t *a = actplane;
    for (uint32_t y = 0; y < g->H; y++) {
        const int32_t *sr = s + (size_t)y * g->Wp;
        const int64_t *tr = tx + (size_t)y * g->Wp;
        for (uint32_t x = 0; x < g->W; x++)
            *a++ = post(ch, (int64_t)sr[x] + tr[x] + cst, rounding);
    }
}

/* Pool actplane (H x W) into out (oh x ow) (§3.4). */
static void pool_plane(const struct kfa_kpu_layer *l, uint8_t *out)
{
    uint32_t H = l->in.h, W = l->in.w, oh = l->out.h, ow = l->out.w;
    const uint8_t *a = actplane;
    switch (l->pool_type) {
    case KFA_KPU_POOL_BYPASS:
        memcpy(out, a, (size_t)H * W);
        return;
    case KFA_KPU_POOL_MAX_2_S2:
    case KFA_KPU_POOL_MEAN_2_S2:
    case KFA_KPU_POOL_MAX_4_S4:
    case KFA_KPU_POOL_MEAN_4_S4: {
        uint32_t k = l->pool_type <= KFA_KPU_POOL_MEAN_2_S2 ? 2u : 4u;
        int is_max = l->pool_type == KFA_KPU_POOL_MAX_2_S2 || l->pool_type == KFA_KPU_POOL_MAX_4_S4;
        for (uint32_t y = 0; y < oh; y++)
            for (uint32_t x = 0; x < ow; x++) {
                uint32_t sum = 0, mx = 0;
                for (uint32_t dy = 0; dy < k; dy++)
                    for (uint32_t dx = 0; dx < k; dx++) {
                        uint32_t v = a[(size_t)(y * k + dy) * W + x * k + dx];
                        sum += v;
                        mx = v > mx ? v : mx;
                    }
                *out++ = (uint8_t)(is_max ? mx : sum / (k * k));
            }
        return;
    }
    case KFA_KPU_POOL_LEFT_TOP_2_S2:
    case KFA_KPU_POOL_RIGHT_TOP_2_S2:
    case KFA_KPU_POOL_LEFT_TOP_4_S4: {
        uint32_t k = l->pool_type == KFA_KPU_POOL_LEFT_TOP_4_S4 ? 4u : 2u;
        uint32_t dx = l->pool_type == KFA_KPU_POOL_RIGHT_TOP_2_S2 ? 1u : 0u;
        for (uint32_t y = 0; y < oh; y++)
            for (uint32_t x = 0; x < ow; x++)
                *out++ = a[(size_t)y * k * W + x * k + dx];
        return;
    }
    case KFA_KPU_POOL_MEAN_2_S1:
    case KFA_KPU_POOL_MAX_2_S1:
        for (uint32_t y = 0; y < H; y++)
            for (uint32_t x = 0; x < W; x++) {
                uint32_t y1 = y + 1 < H ? y + 1 : y, x1 = x + 1 < W ? x + 1 : x;
                uint32_t v00 = a[(size_t)y * W + x], v01 = a[(size_t)y * W + x1];
                uint32_t v10 = a[(size_t)y1 * W + x], v11 = a[(size_t)y1 * W + x1];
                if (l->pool_type == KFA_KPU_POOL_MEAN_2_S1) {
                    /* edge replicate: clamped coordinates */
                    *out++ = (uint8_t)((v00 + v01 + v10 + v11) / 4u);
                } else {
                    /* out-of-range taps ignored: the clamped duplicates do not change a max */
                    uint32_t m0 = v00 > v01 ? v00 : v01, m1 = v10 > v11 ? v10 : v11;
                    *out++ = (uint8_t)(m0 > m1 ? m0 : m1);
                }
            }
        return;
    default:
        return;
    }
}

int kfa_soft_kpu_conv_fast(const struct kfa_kpu_conv *conv, uint8_t *kpu_ram,
                           enum kfa_rounding rounding)
{
    struct kfa_kpu_layer l;
    struct geo g;
    int r = soft_kpu_prepare(conv, &l);
    if (r < 0)
        return r;

    g.C = l.in.c;
    g.H = l.in.h;
    g.W = l.in.w;
    g.k = l.ksize;
    g.Wp = g.k == 3 ? g.W + 2u : g.W;
    g.Hp = g.k == 3 ? g.H + 2u : g.H;
    g.ps = (size_t)g.Hp * g.Wp + PLANE_SLACK;
    g.n = (size_t)g.H * g.Wp;
    if (!conv->eight_bit || g.n > KFA_SOFT_KPU_GRID_MAX ||
        (size_t)g.Hp * g.Wp > KFA_SOFT_KPU_GRID_MAX ||
        (uint64_t)g.C * g.ps > KFA_SOFT_KPU_PLANES_MAX) {
        fallbacks++;
        return kfa_soft_kpu_conv_naive(conv, kpu_ram, rounding);
    }

    gather(&l, &g, kpu_ram);
    size_t off[9];
    tap_offsets(&g, off);
    uint32_t kk = g.k * g.k;
    size_t out_plane = (size_t)l.out.h * l.out.w;
    uint8_t *stage = soft_kpu_stage;
    struct chan ch;

    if (!l.depthwise) {
        /* Sx and its term are shared by all output channels. */
        tap_sums(&g, 0, g.C, sxbuf);
        for (size_t q = 0; q < g.n; q++)
            txbuf[q] = ((int64_t)l.arg_x * sxbuf[q]) >> l.shr_x;

        uint32_t K = g.C * kk, Ke = (K + 1u) & ~1u;
        for (uint32_t c = 0; c < g.C; c++)
            for (uint32_t t = 0; t < kk; t++)
                rows[c * kk + t] = planes + c * g.ps + off[t];
        if (Ke != K)
            rows[K] = zero_row;

        for (uint32_t o0 = 0; o0 < l.out.c; o0 += OCB) {
            int64_t cst[OCB];
            for (uint32_t o = 0; o < OCB; o++) {
                int64_t sw = 0;
                uint32_t oc = o0 + o;
                for (uint32_t k = 0; k < Ke; k++) {
                    int16_t w =
                        (oc < l.out.c && k < K) ? (int16_t)conv->weights[(size_t)oc * K + k] : 0;
                    wblock[o][k] = w;
                    sw += w;
                }
                cst[o] = (((int64_t)l.arg_w * sw) >> l.shr_w) + l.arg_add * (int64_t)g.C;
            }
            gemm(Ke, g.n);
            for (uint32_t o = 0; o < OCB && o0 + o < l.out.c; o++) {
                uint32_t oc = o0 + o;
                chan_init(&ch, conv->bn + (size_t)oc * KFA_KPU_BN_BYTES, conv->act);
                post_plane(&g, &ch, accbuf[o], txbuf, cst[o], rounding);
                pool_plane(&l, stage + (size_t)oc * out_plane);
            }
        }
    } else {
        for (uint32_t c = 0; c < g.C; c++) {
            const uint8_t *p = planes + c * g.ps;
            const uint8_t *w = conv->weights + (size_t)c * kk;
            int32_t *s = accbuf[0];
            int64_t sw = 0;
            for (uint32_t t = 0; t < kk; t++)
                sw += w[t];
            if (kk == 9) {
                int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6],
                        w7 = w[7], w8 = w[8];
                const uint8_t *r0 = p, *r1 = p + g.Wp, *r2 = p + 2u * g.Wp;
                for (size_t q = 0; q < g.n; q++) {
                    s[q] = w0 * r0[q] + w1 * r0[q + 1] + w2 * r0[q + 2] + w3 * r1[q] +
                           w4 * r1[q + 1] + w5 * r1[q + 2] + w6 * r2[q] + w7 * r2[q + 1] +
                           w8 * r2[q + 2];
                    sxbuf[q] = r0[q] + r0[q + 1] + r0[q + 2] + r1[q] + r1[q + 1] + r1[q + 2] +
                               r2[q] + r2[q + 1] + r2[q + 2];
                }
            } else {
                for (size_t q = 0; q < g.n; q++) {
                    s[q] = (int32_t)w[0] * p[q];
                    sxbuf[q] = p[q];
                }
            }
            for (size_t q = 0; q < g.n; q++)
                txbuf[q] = ((int64_t)l.arg_x * sxbuf[q]) >> l.shr_x;
            int64_t cst = (((int64_t)l.arg_w * sw) >> l.shr_w) + l.arg_add;
            chan_init(&ch, conv->bn + (size_t)c * KFA_KPU_BN_BYTES, conv->act);
            post_plane(&g, &ch, s, txbuf, cst, rounding);
            pool_plane(&l, stage + (size_t)c * out_plane);
        }
    }
    soft_kpu_write_out(conv, &l, stage, kpu_ram);
    return 0;
}
