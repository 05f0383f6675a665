/* SPDX-License-Identifier: MIT */
/*
 * The fast K210_CONV emulation. Same arithmetic as kpu_naive.c (kmodel-facts.md
 * §3.3-§3.4), restructured:
 *
 *  1. gather the input channels once into dense uint8 planes; for 3x3 kernels the planes
 *     get a one-pixel border of pad_value, so every tap is a plain shifted row;
 *  2. the convolution S is a matrix product over "tap rows": a 3x3 conv on a (W+2)-wide
 *     padded grid is a 1x1 conv over C*9 shifted views of the planes. Three kernels, same
 *     result, chosen at run time by what the CPU has (kfa_soft_kpu_limit_isa() caps it):
 *     AVX-512 VNNI (vpdpbusd on tap quads packed once per layer, 8 output channels x 32
 *     pixels, weights as w - 128 plus 128 * Sx), AVX2 (pmaddwd, 4 channels x 16 pixels),
 *     portable C. 8-bit weights keep every partial sum below 2^31 (1024*9 taps * 255 *
 *     255 < 2^31); 16-bit weights go to the naive path;
 *  3. Sx (sum of input taps) is the same for every output channel of a normal conv, so it
 *     is computed once per layer with running sums, and so is its term tx = (arg_x*Sx) >>
 *     shr_x; Sw is a per-channel constant. The GEMM stores acc = S + tx + const directly,
 *     in wrapping int32; it is exact when the channel's acc bound (S in [0, 255*Sw], tx
 *     bounds) fits in int32, else the int64 terms are added back per pixel;
 *  4. batch-norm + activation ("post"): per output channel the map acc -> uint8 is fixed.
 *     The activation table is turned once per layer into intervals of v (the BN output)
 *     with their segment (struct act_tab). Per channel, the actual acc range of the plane
 *     gives the v range, hence the few intervals that can occur (two for ReLU tables);
 *     when every value on the way provably fits in int32 (checked per channel, struct
 *     vplan), an AVX2 loop does 8 pixels at a time: BN with 32x32->64 multiplies, the
 *     interval index by compares, the segment parameters by a permute, the rounding
 *     shift of either rule (one add and shift when the products are >= 0), and the clamp
 *     by saturating packs. A plane whose v is constant is one memset. Otherwise (or
 *     without AVX2) the channel runs the int64 scalar formula. All are exact; tests
 *     compare each with kpu_naive.c;
 *  5. pooling on the activation plane (2x2 stride-2 types with SSE2).
 *
 * Layers it does not cover (16-bit weights, sizes beyond its static scratch) go to the
 * naive path, counted by kfa_soft_kpu_fallbacks(). kfa_soft_kpu_fast_stats() counts how
 * channels were post-processed (for tests of the special paths and for the benchmark).
 *
 * Static scratch, all bounded by the macros below (at the defaults GRID_MAX = 2^18 pixels,
 * PLANES_MAX = PACK_MAX = 4 MiB): input planes 4 MiB, eight int32 acc planes 8 MiB, Sx,
 * tx32, addbuf and column-sum planes 1 MiB each, tx64 2 MiB, packed quads 4 MiB (x86-64
 * only), activation plane and zero row 256 KiB each, weight blocks about 300 KiB: about
 * 23 MiB on x86-64 (18 MiB elsewhere), in .bss, touched only as far as a layer needs.
 */
#include <string.h>

#include "hal/soft_kpu/soft_kpu.h"
#include "hal/soft_kpu/soft_kpu_int.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) &&                            \
    !defined(KFA_SOFT_KPU_PORTABLE_ONLY)
#include <immintrin.h>
#define FAST_HAVE_AVX2_KERNEL 1
#endif

#ifndef KFA_SOFT_KPU_GRID_MAX
#define KFA_SOFT_KPU_GRID_MAX (1u << 18) /* conv grid pixels H*(W+2) the scratch holds */
#endif
#ifndef KFA_SOFT_KPU_PLANES_MAX
#define KFA_SOFT_KPU_PLANES_MAX (4u << 20) /* bytes of gathered input planes */
#endif

#define OCB 8u          /* output channels per GEMM block (AVX2/portable: two of 4) */
#define OCS 4u          /* output channels per AVX2/portable GEMM pass */
#define PXB 16u         /* pixels per GEMM step */
#define POST_STEP 32u   /* pixels per step of the vector post loop */
#define GRID_SLACK 64u  /* entries past the grid that vector loops may read or write */
#define PLANE_SLACK 64u /* readable bytes past each plane: the last 16-pixel step and taps */
#define MAX_TAPS (1024u * 9u)
#ifndef KFA_SOFT_KPU_PACK_MAX
#define KFA_SOFT_KPU_PACK_MAX (4u << 20) /* bytes of tap-quad packed input (VNNI GEMM) */
#endif
#define VNNI_PX 32u   /* pixels per VNNI GEMM step */
#define VNNI_BIAS 128 /* unsigned weight w = (w - 128) + 128: s8 operand + 128 * Sx */
#define U8_MAX_V 255
/* |(v - x_start) * y_mul| bound of the int32 activation: room for + result_bias (<= 255). */
#define VEC_PROD_MAX (1ll << 30)
#define VEC_SHIFT_MAX 30u /* largest activation shift of the int32 rounding */

static uint8_t planes[KFA_SOFT_KPU_PLANES_MAX + PLANE_SLACK];
static uint8_t zero_row[KFA_SOFT_KPU_GRID_MAX + PLANE_SLACK];
static const uint8_t *rows[MAX_TAPS + 4];
static int32_t accbuf[OCB][KFA_SOFT_KPU_GRID_MAX + GRID_SLACK];
static int32_t colsum[KFA_SOFT_KPU_GRID_MAX + PLANE_SLACK];
static int32_t sxbuf[KFA_SOFT_KPU_GRID_MAX + GRID_SLACK];
static int32_t tx32[KFA_SOFT_KPU_GRID_MAX + GRID_SLACK];
static int64_t tx64[KFA_SOFT_KPU_GRID_MAX + GRID_SLACK];
static uint8_t actplane[KFA_SOFT_KPU_GRID_MAX + GRID_SLACK];
static int16_t wblock[OCB][MAX_TAPS + 4];
#ifdef FAST_HAVE_AVX2_KERNEL
static int32_t addbuf[KFA_SOFT_KPU_GRID_MAX + GRID_SLACK];
static uint8_t packed[KFA_SOFT_KPU_PACK_MAX];
#endif
static uint32_t fallbacks;
static struct kfa_soft_kpu_fast_stats stats;
static int isa_cap = KFA_SOFT_KPU_ISA_BEST;

uint32_t kfa_soft_kpu_fallbacks(void)
{
    return fallbacks;
}

void kfa_soft_kpu_fast_stats(struct kfa_soft_kpu_fast_stats *out)
{
    *out = stats;
}

#ifdef FAST_HAVE_AVX2_KERNEL
static int isa_level(void);
#endif

int kfa_soft_kpu_limit_isa(enum kfa_soft_kpu_isa cap)
{
    isa_cap = (int)cap;
#ifdef FAST_HAVE_AVX2_KERNEL
    return isa_level();
#else
    return KFA_SOFT_KPU_ISA_PORTABLE;
#endif
}

static int64_t wmul(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a * (uint64_t)b);
}

static int64_t wadd(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static int fits32(int64_t v)
{
    return v >= INT32_MIN && v <= INT32_MAX;
}

/* floor(a * x / 2^s) as the KPU computes it (int64, arithmetic shift). */
static int64_t mul_shr(int64_t a, int64_t x, uint32_t s)
{
    return wmul(a, x) >> s;
}

/* ---- batch-norm and the activation table as intervals of v ---------------------------- */

struct bnp {
    int64_t mul, add; /* norm_mul (24-bit), norm_add (32-bit), §3.2 */
    uint32_t nsh;     /* norm_shift (4-bit) */
};

static void bnp_init(struct bnp *b, const uint8_t *bn)
{
    uint64_t w = kfa_ld_u64le(bn);
    b->mul = kfa_kpu_sext(kfa_kpu_bits(w, 0, 24), 24);
    b->add = kfa_kpu_sext(kfa_kpu_bits(w, 24, 32), 32);
    b->nsh = (uint32_t)kfa_kpu_bits(w, 56, 4);
}

static int64_t bn_v(const struct bnp *b, int64_t acc)
{
    return wadd(wmul(acc, b->mul) >> b->nsh, b->add);
}

/*
 * The 16 segments (§3.3), and the segment rule "last i with x_start[i] < v, else 0"
 * rewritten as intervals: u[] are the distinct x_starts ascending; interval j is the set
 * of v with exactly j of them below v, i.e. (u[j-1], u[j]]; seg[j] is its segment.
 */
struct act_tab {
    int64_t xs[KFA_KPU_ACT_SEGMENTS], ym[KFA_KPU_ACT_SEGMENTS], bias[KFA_KPU_ACT_SEGMENTS];
    uint32_t sh[KFA_KPU_ACT_SEGMENTS];
    uint32_t nu;
    int64_t u[KFA_KPU_ACT_SEGMENTS];
    uint8_t seg[KFA_KPU_ACT_SEGMENTS + 1];
};

static void act_tab_init(struct act_tab *t, const uint8_t *act)
{
    for (uint32_t i = 0; i < KFA_KPU_ACT_SEGMENTS; i++) {
        uint64_t s = kfa_ld_u64le(act + 8u * i);
        uint32_t sh = (uint32_t)kfa_kpu_bits(s, 0, 8);
        t->sh[i] = sh > SOFT_KPU_MAX_SHIFT ? SOFT_KPU_MAX_SHIFT : sh;
        t->ym[i] = kfa_kpu_sext(kfa_kpu_bits(s, 8, 16), 16);
        t->xs[i] = kfa_kpu_sext(kfa_kpu_bits(s, 24, 36), 36);
        t->bias[i] = act[8u * KFA_KPU_ACT_SEGMENTS + i];
    }
    t->nu = 0;
    for (uint32_t i = 0; i < KFA_KPU_ACT_SEGMENTS; i++) { /* insertion sort, unique */
        int64_t x = t->xs[i];
        uint32_t k = 0;
        while (k < t->nu && t->u[k] < x)
            k++;
        if (k < t->nu && t->u[k] == x)
            continue;
        memmove(&t->u[k + 1], &t->u[k], (t->nu - k) * sizeof t->u[0]);
        t->u[k] = x;
        t->nu++;
    }
    t->seg[0] = 0; /* no x_start below v */
    for (uint32_t j = 1; j <= t->nu; j++) {
        uint32_t s = 0;
        for (uint32_t i = 0; i < KFA_KPU_ACT_SEGMENTS; i++)
            if (t->xs[i] <= t->u[j - 1])
                s = i;
        t->seg[j] = (uint8_t)s;
    }
}

static uint32_t act_interval(const struct act_tab *t, int64_t v)
{
    uint32_t j = 0;
    for (uint32_t k = 0; k < t->nu; k++)
        j += t->u[k] < v;
    return j;
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

/* The int64 formula of §3.3 for one acc: the scalar path and the reference of the plans. */
static uint8_t post1(const struct bnp *b, const struct act_tab *t, int64_t acc,
                     enum kfa_rounding rounding)
{
    int64_t v = bn_v(b, acc);
    uint32_t s = t->seg[act_interval(t, v)];
    int64_t out = round_shift(wmul(wadd(v, -t->xs[s]), t->ym[s]), t->sh[s], rounding);
    out = wadd(out, t->bias[s]);
    return (uint8_t)(out < 0 ? 0 : out > U8_MAX_V ? U8_MAX_V : out);
}

#ifdef FAST_HAVE_AVX2_KERNEL
/*
 * One channel's post in int32: v = low 32 bits of (acc*mul >> nsh) + add is exact when v
 * is known to fit; intervals [0, nint) of v within [vmin, vmax], interval index = number
 * of bnd[] below v; per interval the segment's x_start (mod 2^32: only v - x_start is
 * used, and only through a product that fits), y_mul, shift and bias.
 */
#define VP_MAX 16u
struct vplan {
    int32_t vclamp; /* v = min(v, vclamp): the top interval's output is 255 from there on */
    int32_t mul, add;
    uint32_t nsh;
    uint32_t nint;
    int32_t bnd[VP_MAX];
    int32_t xs[VP_MAX], ym[VP_MAX], sh[VP_MAX], shm1[VP_MAX], mask[VP_MAX], half[VP_MAX];
    int32_t bias[VP_MAX];
    /*
     * nonneg: every product (v - x_start) * y_mul is >= 0 (y_mul >= 0, as nncase writes
     * tables, §3.3). Then both rules are one add and a floor shift, with the bias folded
     * in as bias << shift: half-up (p + kup) >> sh, kup = half + (bias << sh); half-even
     * (p + kev + ((p >> sh) & 1)) >> sh, kev = half - 1 + (bias << sh).
     */
    int nonneg;
    int32_t kev[VP_MAX], kup[VP_MAX];
};

static int prod_ok(int64_t d, int64_t ym)
{
    int64_t p = d * ym; /* |d| < 2^37, |ym| <= 2^16: no overflow */
    return p <= VEC_PROD_MAX && p >= -VEC_PROD_MAX;
}

/* Add interval [lo, hi] of segment s to p; -1 if it cannot run in int32. */
static int plan_add(struct vplan *p, const struct act_tab *t, uint32_t s, int64_t lo, int64_t hi)
{
    int64_t ym = t->ym[s];
    uint32_t sh = t->sh[s];
    if (p->nint >= VP_MAX)
        return -1;
    if (sh == 0) { /* exact: round_shift(2p, 1) == p under both rules */
        ym *= 2;
        sh = 1;
    }
    if (sh > VEC_SHIFT_MAX || !prod_ok(lo - t->xs[s], ym) || !prod_ok(hi - t->xs[s], ym))
        return -1;
    uint32_t i = p->nint++;
    int64_t plo = (lo - t->xs[s]) * ym, phi = (hi - t->xs[s]) * ym;
    int64_t kup = (1ll << (sh - 1u)) + (t->bias[s] << sh);
    if (plo < 0 || phi < 0 || (plo > phi ? plo : phi) + kup + 1 > INT32_MAX)
        p->nonneg = 0;
    p->kup[i] = p->nonneg ? (int32_t)kup : 0;
    p->kev[i] = p->nonneg ? (int32_t)(kup - 1) : 0;
    p->xs[i] = (int32_t)(uint32_t)(uint64_t)t->xs[s];
    p->ym[i] = (int32_t)ym;
    p->sh[i] = (int32_t)sh;
    p->shm1[i] = (int32_t)sh - 1;
    p->mask[i] = (int32_t)((1u << sh) - 1u);
    p->half[i] = (int32_t)(1u << (sh - 1u));
    p->bias[i] = (int32_t)t->bias[s];
    return 0;
}

/* The activation of v in segment s (§3.3), int64. */
static int64_t seg_out(const struct act_tab *t, uint32_t s, int64_t v, enum kfa_rounding rounding)
{
    int64_t out = round_shift(wmul(wadd(v, -t->xs[s]), t->ym[s]), t->sh[s], rounding);
    out = wadd(out, t->bias[s]);
    return out < 0 ? 0 : out > U8_MAX_V ? U8_MAX_V : out;
}

/*
 * Lower vmax to where the top interval's output reaches 255, when it does and stays there:
 * y_mul > 0 and v > x_start make the product >= 0, where both rounding rules are
 * non-decreasing, so every v above the first 255 also gives 255. Keeps ReLU channels with
 * large v (far beyond the clamp) in int32. Returns the new vmax.
 */
static int64_t saturate_top(const struct act_tab *t, int64_t vmin, int64_t vmax,
                            enum kfa_rounding rounding)
{
    uint32_t j = act_interval(t, vmax), s = t->seg[j];
    int64_t lo = j ? t->u[j - 1] + 1 : vmin;
    lo = lo > vmin ? lo : vmin;
    if (t->ym[s] <= 0 || lo <= t->xs[s] || seg_out(t, s, vmax, rounding) != U8_MAX_V)
        return vmax;
    int64_t hi = vmax; /* smallest v in [lo, vmax] with output 255 */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (seg_out(t, s, mid, rounding) == U8_MAX_V)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Build the int32 plan for acc in [amin, amax] (both int32); 0, or -1 if it does not fit. */
static int plan_build(struct vplan *p, const struct bnp *b, const struct act_tab *t, int64_t amin,
                      int64_t amax, enum kfa_rounding rounding)
{
    int64_t v1 = bn_v(b, amin), v2 = bn_v(b, amax); /* monotone in acc: no wrap here */
    int64_t vmin = v1 < v2 ? v1 : v2, vmax = v1 < v2 ? v2 : v1;
    if (!fits32(vmin) || !fits32(vmax))
        return -1;
    vmax = saturate_top(t, vmin, vmax, rounding);
    p->vclamp = (int32_t)vmax;
    p->mul = (int32_t)b->mul;
    p->add = (int32_t)b->add;
    p->nsh = b->nsh;
    p->nint = 0;
    p->nonneg = 1;
    uint32_t j0 = act_interval(t, vmin), j1 = act_interval(t, vmax);
    uint32_t cur = t->seg[j0];
    int64_t lo = vmin;
    for (uint32_t j = j0 + 1; j <= j1; j++) {
        if (t->seg[j] == cur)
            continue;            /* same segment on both sides: no boundary */
        int64_t u = t->u[j - 1]; /* vmin <= u < vmax */
        if (plan_add(p, t, cur, lo, u) < 0)
            return -1;
        p->bnd[p->nint - 1] = (int32_t)u;
        lo = u + 1;
        cur = t->seg[j];
    }
    return plan_add(p, t, cur, lo, vmax);
}

/* ---- the AVX2 kernels -------------------------------------------------------------- */

#define AVX2_FN __attribute__((target("avx2")))
#define AVX2_INLINE static inline __attribute__((target("avx2"), always_inline))

/* What the CPU has (detected once), capped by kfa_soft_kpu_limit_isa(). */
static int isa_level(void)
{
    static int cpu = -1;
    if (cpu < 0) {
        __builtin_cpu_init();
        cpu = KFA_SOFT_KPU_ISA_PORTABLE;
        if (__builtin_cpu_supports("avx2"))
            cpu = KFA_SOFT_KPU_ISA_AVX2;
        if (cpu == KFA_SOFT_KPU_ISA_AVX2 && __builtin_cpu_supports("avx512f") &&
            __builtin_cpu_supports("avx512vnni"))
            cpu = KFA_SOFT_KPU_ISA_AVX512VNNI;
    }
    return cpu < isa_cap ? cpu : isa_cap;
}

static int have_avx2(void)
{
    return isa_level() >= KFA_SOFT_KPU_ISA_AVX2;
}

static int have_vnni(void)
{
    return isa_level() >= KFA_SOFT_KPU_ISA_AVX512VNNI;
}

/* Low 32 bits of (x * m) >> s per int32 lane (m fits int32, s < 32). */
AVX2_INLINE __m256i mul_shr_lo32(__m256i x, __m256i m, __m128i s, __m128i s32)
{
    __m256i pe = _mm256_mul_epi32(x, m);
    __m256i po = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), m);
    return _mm256_blend_epi32(_mm256_srl_epi64(pe, s), _mm256_sll_epi64(po, s32), 0xAA);
}

struct vregs {
    __m256i mul, add, vclamp, bnd[VP_MAX - 1];
    __m256i xs[2], ym[2], sh[2], shm1[2], mask[2], half[2], bias[2], k[2];
    __m128i nsh, nsh32;
    uint32_t nb;
};

AVX2_FN static void vregs_load(struct vregs *r, const struct vplan *p, int half_up)
{
    int32_t tab[8][VP_MAX];
    r->mul = _mm256_set1_epi32(p->mul);
    r->add = _mm256_set1_epi32(p->add);
    r->vclamp = _mm256_set1_epi32(p->vclamp);
    r->nsh = _mm_cvtsi32_si128((int)p->nsh);
    r->nsh32 = _mm_cvtsi32_si128(32 - (int)p->nsh);
    r->nb = p->nint - 1u;
    for (uint32_t i = 0; i < r->nb; i++)
        r->bnd[i] = _mm256_set1_epi32(p->bnd[i]);
    for (uint32_t i = 0; i < VP_MAX; i++) { /* unused entries repeat the last interval */
        uint32_t k = i < p->nint ? i : p->nint - 1u;
        tab[0][i] = p->xs[k];
        tab[1][i] = p->ym[k];
        tab[2][i] = p->sh[k];
        tab[3][i] = p->shm1[k];
        tab[4][i] = p->mask[k];
        tab[5][i] = p->half[k];
        tab[6][i] = p->bias[k];
        tab[7][i] = half_up ? p->kup[k] : p->kev[k];
    }
    __m256i *dst[8] = {r->xs, r->ym, r->sh, r->shm1, r->mask, r->half, r->bias, r->k};
    for (uint32_t t = 0; t < 8; t++)
        for (uint32_t h = 0; h < 2; h++)
            dst[t][h] = _mm256_loadu_si256((const __m256i *)&tab[t][8 * h]);
}

/* Per-lane entry idx (0..15) of a 16-entry table held in two registers. */
AVX2_INLINE __m256i lut16(const __m256i *tab, __m256i idx, __m256i hi, int nclass)
{
    if (nclass == 1)
        return tab[0];
    __m256i lo = _mm256_permutevar8x32_epi32(tab[0], idx);
    if (nclass == 8)
        return lo;
    return _mm256_blendv_epi8(lo, _mm256_permutevar8x32_epi32(tab[1], idx), hi);
}

/*
 * Post of 8 acc values -> 8 int32 in [0, 255] after the clamp the caller's packs do.
 * nclass: 1 (one interval), 8 (<= 8), 16 (<= 16); half_up: the rounding rule.
 */
AVX2_INLINE __m256i vpost8(const struct vregs *r, __m256i acc, int nclass, int half_up, int nonneg)
{
    __m256i v = _mm256_add_epi32(mul_shr_lo32(acc, r->mul, r->nsh, r->nsh32), r->add);
    v = _mm256_min_epi32(v, r->vclamp);
    __m256i idx = _mm256_setzero_si256(), hi = idx;
    if (nclass != 1) {
        for (uint32_t i = 0; i < r->nb; i++)
            idx = _mm256_sub_epi32(idx, _mm256_cmpgt_epi32(v, r->bnd[i]));
        if (nclass == 16)
            hi = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7));
    }
    __m256i d = _mm256_sub_epi32(v, lut16(r->xs, idx, hi, nclass));
    __m256i p = _mm256_mullo_epi32(d, lut16(r->ym, idx, hi, nclass));
    __m256i one = _mm256_set1_epi32(1), res;
    if (nonneg) {
        __m256i sh = lut16(r->sh, idx, hi, nclass), k = lut16(r->k, idx, hi, nclass);
        if (half_up)
            return _mm256_srav_epi32(_mm256_add_epi32(p, k), sh);
        __m256i odd = _mm256_and_si256(_mm256_srav_epi32(p, sh), one);
        return _mm256_srav_epi32(_mm256_add_epi32(_mm256_add_epi32(p, k), odd), sh);
    }
    if (half_up) {
        /* t = p >> (s-1); odd t: (t >> 1) + 1, or - 1 if negative (SDK kpu_carry_shift) */
        __m256i t = _mm256_srav_epi32(p, lut16(r->shm1, idx, hi, nclass));
        __m256i odd = _mm256_srai_epi32(_mm256_slli_epi32(t, 31), 31);
        __m256i sgn = _mm256_or_si256(_mm256_srai_epi32(t, 31), one);
        res = _mm256_add_epi32(_mm256_srai_epi32(t, 1), _mm256_and_si256(odd, sgn));
    } else {
        /* NN02 carry_shift<int64_t, true>: compare the fraction with one half */
        __m256i ig = _mm256_srav_epi32(p, lut16(r->sh, idx, hi, nclass));
        __m256i fr = _mm256_and_si256(p, lut16(r->mask, idx, hi, nclass));
        __m256i hf = lut16(r->half, idx, hi, nclass);
        __m256i odd = _mm256_srai_epi32(_mm256_slli_epi32(ig, 31), 31);
        __m256i inc = _mm256_or_si256(_mm256_cmpgt_epi32(fr, hf),
                                      _mm256_and_si256(_mm256_cmpeq_epi32(fr, hf), odd));
        __m256i sgn = _mm256_or_si256(_mm256_srai_epi32(p, 31), one);
        res = _mm256_add_epi32(ig, _mm256_and_si256(inc, sgn));
    }
    return _mm256_add_epi32(res, lut16(r->bias, idx, hi, nclass));
}

AVX2_INLINE void vpost_loop(const struct vregs *r, const int32_t *acc, uint8_t *out, size_t n,
                            int nclass, int half_up, int nonneg)
{
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t q = 0; q < n; q += POST_STEP) {
        __m256i r0 =
            vpost8(r, _mm256_loadu_si256((const __m256i *)(acc + q)), nclass, half_up, nonneg);
        __m256i r1 =
            vpost8(r, _mm256_loadu_si256((const __m256i *)(acc + q + 8)), nclass, half_up, nonneg);
        __m256i r2 =
            vpost8(r, _mm256_loadu_si256((const __m256i *)(acc + q + 16)), nclass, half_up, nonneg);
        __m256i r3 =
            vpost8(r, _mm256_loadu_si256((const __m256i *)(acc + q + 24)), nclass, half_up, nonneg);
        __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(r0, r1), _mm256_packs_epi32(r2, r3));
        _mm256_storeu_si256((__m256i *)(out + q), _mm256_permutevar8x32_epi32(b, order));
    }
}

/* out[q] = post(acc[q]) for q < n (written up to n rounded up to POST_STEP). */
AVX2_FN static void vpost_plane(const struct vplan *p, const int32_t *acc, uint8_t *out, size_t n,
                                enum kfa_rounding rounding)
{
    struct vregs r;
    int hu = rounding == KFA_ROUND_HALF_UP;
    vregs_load(&r, p, hu);
    int cls = p->nint == 1 ? 1 : p->nint <= 8 ? 8 : 16;
    /* constant arguments: each call is its own specialised copy of the loop */
#define VPOST_CASE(c, h, nn)                                                                       \
    if (cls == (c) && hu == (h) && p->nonneg == (nn)) {                                            \
        vpost_loop(&r, acc, out, n, c, h, nn);                                                     \
        return;                                                                                    \
    }
    VPOST_CASE(1, 0, 1)
    VPOST_CASE(8, 0, 1)
    VPOST_CASE(16, 0, 1)
    VPOST_CASE(1, 1, 1)
    VPOST_CASE(8, 1, 1)
    VPOST_CASE(16, 1, 1)
    VPOST_CASE(1, 0, 0)
    VPOST_CASE(8, 0, 0)
    VPOST_CASE(16, 0, 0)
    VPOST_CASE(1, 1, 0)
    VPOST_CASE(8, 1, 0)
    VPOST_CASE(16, 1, 0)
#undef VPOST_CASE
}

/* Min and max of acc over the H x W valid pixels of a grid with row stride Wp. */
AVX2_FN static void vminmax(const int32_t *acc, uint32_t H, uint32_t W, size_t Wp, int32_t *mn,
                            int32_t *mx)
{
    __m256i vmn = _mm256_set1_epi32(INT32_MAX), vmx = _mm256_set1_epi32(INT32_MIN);
    int32_t smn = INT32_MAX, smx = INT32_MIN;
    for (uint32_t y = 0; y < H; y++) {
        const int32_t *a = acc + (size_t)y * Wp;
        uint32_t x = 0;
        for (; x + 8 <= W; x += 8) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(a + x));
            vmn = _mm256_min_epi32(vmn, v);
            vmx = _mm256_max_epi32(vmx, v);
        }
        for (; x < W; x++) {
            smn = a[x] < smn ? a[x] : smn;
            smx = a[x] > smx ? a[x] : smx;
        }
    }
    int32_t t0[8], t1[8];
    _mm256_storeu_si256((__m256i *)t0, vmn);
    _mm256_storeu_si256((__m256i *)t1, vmx);
    for (int i = 0; i < 8; i++) {
        smn = t0[i] < smn ? t0[i] : smn;
        smx = t1[i] > smx ? t1[i] : smx;
    }
    *mn = smn;
    *mx = smx;
}

/* tx[q] = low 32 bits of (arg_x * sx[q]) >> shr_x for q < n (rounded up to 8). */
AVX2_FN static void vtx(int32_t argx, uint32_t shr, const int32_t *sx, int32_t *tx, size_t n)
{
    __m256i m = _mm256_set1_epi32(argx);
    __m128i s = _mm_cvtsi32_si128((int)shr), s32 = _mm_cvtsi32_si128(32 - (int)shr);
    for (size_t q = 0; q < n; q += 8)
        _mm256_storeu_si256((__m256i *)(tx + q),
                            mul_shr_lo32(_mm256_loadu_si256((const __m256i *)(sx + q)), m, s, s32));
}

/*
 * Depthwise 3x3 of one padded plane p (row stride Wp) for q < n (rounded up to 16):
 * acc[q] = S + low32((arg_x * Sx) >> shr_x) + cst, wrapping int32.
 */
AVX2_FN static void vdw3(const uint8_t *p, size_t Wp, const uint8_t *w, int32_t argx, uint32_t shr,
                         int32_t cst, int32_t *acc, size_t n)
{
    __m256i wp[5];
    for (int i = 0; i < 5; i++) {
        uint32_t lo = w[2 * i], hi = 2 * i + 1 < 9 ? w[2 * i + 1] : 0;
        wp[i] = _mm256_set1_epi32((int32_t)(lo | hi << 16));
    }
    __m256i m = _mm256_set1_epi32(argx), c = _mm256_set1_epi32(cst);
    __m128i s = _mm_cvtsi32_si128((int)shr), s32 = _mm_cvtsi32_si128(32 - (int)shr);
    const __m256i ones = _mm256_set1_epi16(1), zero = _mm256_setzero_si256();
    for (size_t q = 0; q < n; q += 16) {
        __m256i t[10];
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++)
                t[ky * 3 + kx] = _mm256_cvtepu8_epi16(
                    _mm_loadu_si128((const __m128i *)(p + (size_t)ky * Wp + (size_t)kx + q)));
        t[9] = zero;
        __m256i slo = zero, shi = zero, sum16 = zero;
        for (int i = 0; i < 5; i++) {
            __m256i lo = _mm256_unpacklo_epi16(t[2 * i], t[2 * i + 1]);
            __m256i hi = _mm256_unpackhi_epi16(t[2 * i], t[2 * i + 1]);
            slo = _mm256_add_epi32(slo, _mm256_madd_epi16(lo, wp[i]));
            shi = _mm256_add_epi32(shi, _mm256_madd_epi16(hi, wp[i]));
            sum16 = _mm256_add_epi16(sum16, _mm256_add_epi16(t[2 * i], t[2 * i + 1]));
        }
        /* Sx <= 9 * 255 fits int16; widen in the same lane order as slo/shi */
        __m256i xlo = _mm256_madd_epi16(_mm256_unpacklo_epi16(sum16, zero), ones);
        __m256i xhi = _mm256_madd_epi16(_mm256_unpackhi_epi16(sum16, zero), ones);
        slo = _mm256_add_epi32(_mm256_add_epi32(slo, mul_shr_lo32(xlo, m, s, s32)), c);
        shi = _mm256_add_epi32(_mm256_add_epi32(shi, mul_shr_lo32(xhi, m, s, s32)), c);
        _mm256_storeu_si256((__m256i *)(acc + q), _mm256_permute2x128_si256(slo, shi, 0x20));
        _mm256_storeu_si256((__m256i *)(acc + q + 8), _mm256_permute2x128_si256(slo, shi, 0x31));
    }
}
#endif

/* ---- GEMM over tap rows ------------------------------------------------------------ */

/*
 * accbuf[o][q] = sum_k wblock[o][k] * rows[k][q] + add[q] + cst[o] (wrapping int32) for
 * o in [ob, ob + OCS) and q in [0, n) rounded up to PXB; K even; add may be NULL.
 */
static void gemm_generic(uint32_t K, size_t n, const int32_t *add, const int32_t *cst, uint32_t ob)
{
    for (size_t q0 = 0; q0 < n; q0 += PXB) {
        int32_t a[OCS][PXB];
        memset(a, 0, sizeof a);
        for (uint32_t k = 0; k < K; k++) {
            const uint8_t *r = rows[k] + q0;
            for (uint32_t o = 0; o < OCS; o++) {
                int32_t w = wblock[ob + o][k];
                for (uint32_t j = 0; j < PXB; j++)
                    a[o][j] += w * r[j];
            }
        }
        for (uint32_t o = 0; o < OCS; o++)
            for (uint32_t j = 0; j < PXB; j++)
                accbuf[ob + o][q0 + j] =
                    (int32_t)((uint32_t)a[o][j] + (uint32_t)(add ? add[q0 + j] : 0) +
                              (uint32_t)cst[ob + o]);
    }
}

#ifdef FAST_HAVE_AVX2_KERNEL
AVX2_FN static void gemm_avx2(uint32_t K, size_t n, const int32_t *add, const int32_t *cst,
                              uint32_t ob)
{
    static int32_t wp[OCS][MAX_TAPS / 2 + 2];
    for (uint32_t o = 0; o < OCS; o++)
        for (uint32_t p = 0; p < K / 2; p++)
            wp[o][p] = (int32_t)((uint32_t)(uint16_t)wblock[ob + o][2 * p] |
                                 (uint32_t)(uint16_t)wblock[ob + o][2 * p + 1] << 16);
    __m256i c0 = _mm256_set1_epi32(cst[ob]), c1 = _mm256_set1_epi32(cst[ob + 1]);
    __m256i c2 = _mm256_set1_epi32(cst[ob + 2]), c3 = _mm256_set1_epi32(cst[ob + 3]);
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
        __m256i t0 = _mm256_setzero_si256(), t1 = t0;
        if (add) {
            t0 = _mm256_loadu_si256((const __m256i *)(add + q0));
            t1 = _mm256_loadu_si256((const __m256i *)(add + q0 + 8));
        }
#define STORE_OC(o, l, h, c)                                                                       \
    _mm256_storeu_si256(                                                                           \
        (__m256i *)&accbuf[ob + o][q0],                                                            \
        _mm256_add_epi32(_mm256_add_epi32(_mm256_permute2x128_si256(l, h, 0x20), t0), c));         \
    _mm256_storeu_si256(                                                                           \
        (__m256i *)&accbuf[ob + o][q0 + 8],                                                        \
        _mm256_add_epi32(_mm256_add_epi32(_mm256_permute2x128_si256(l, h, 0x31), t1), c))
        STORE_OC(0, a0l, a0h, c0);
        STORE_OC(1, a1l, a1h, c1);
        STORE_OC(2, a2l, a2h, c2);
        STORE_OC(3, a3l, a3h, c3);
#undef STORE_OC
    }
}
#endif

#ifdef FAST_HAVE_AVX2_KERNEL
/*
 * Tap quads for the VNNI GEMM: packed[(p * np + q) * 4 + i] = rows[4p + i][q] for p < K4/4,
 * q < np (np a multiple of VNNI_PX). SSE2, i.e. any x86-64.
 */
static void pack_quads(uint32_t K4, size_t np)
{
    for (uint32_t p = 0; p < K4 / 4u; p++) {
        const uint8_t *r0 = rows[4 * p], *r1 = rows[4 * p + 1], *r2 = rows[4 * p + 2],
                      *r3 = rows[4 * p + 3];
        uint8_t *dst = packed + (size_t)p * np * 4u;
        for (size_t q = 0; q < np; q += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(r0 + q));
            __m128i b = _mm_loadu_si128((const __m128i *)(r1 + q));
            __m128i c = _mm_loadu_si128((const __m128i *)(r2 + q));
            __m128i d = _mm_loadu_si128((const __m128i *)(r3 + q));
            __m128i abl = _mm_unpacklo_epi8(a, b), abh = _mm_unpackhi_epi8(a, b);
            __m128i cdl = _mm_unpacklo_epi8(c, d), cdh = _mm_unpackhi_epi8(c, d);
            _mm_storeu_si128((__m128i *)(dst + 4 * q), _mm_unpacklo_epi16(abl, cdl));
            _mm_storeu_si128((__m128i *)(dst + 4 * q + 16), _mm_unpackhi_epi16(abl, cdl));
            _mm_storeu_si128((__m128i *)(dst + 4 * q + 32), _mm_unpacklo_epi16(abh, cdh));
            _mm_storeu_si128((__m128i *)(dst + 4 * q + 48), _mm_unpackhi_epi16(abh, cdh));
        }
    }
}

/*
 * accbuf[o][q] = sum_k (wblock[o][k] - 128) * rows[k][q] + add[q] + cst[o] for all OCB
 * channels and q < np, from the packed quads (vpdpbusd: u8 x s8 summed in fours into
 * int32, no saturation); the caller puts 128 * Sx into add.
 */
__attribute__((target("avx512f,avx512vnni"))) static void
gemm_vnni(uint32_t K4, size_t np, const int32_t *add, const int32_t *cst)
{
    static int32_t wq[MAX_TAPS / 4 + 1][OCB];
    for (uint32_t p = 0; p < K4 / 4u; p++)
        for (uint32_t o = 0; o < OCB; o++) {
            uint32_t v = 0;
            for (uint32_t i = 0; i < 4; i++)
                v |= (uint32_t)(uint8_t)(wblock[o][4 * p + i] - VNNI_BIAS) << (8 * i);
            wq[p][o] = (int32_t)v;
        }
    for (size_t q0 = 0; q0 < np; q0 += VNNI_PX) {
        __m512i a[OCB][2];
        for (uint32_t o = 0; o < OCB; o++)
            a[o][0] = a[o][1] = _mm512_setzero_si512();
        const uint8_t *x = packed + q0 * 4u;
        for (uint32_t p = 0; p < K4 / 4u; p++, x += np * 4u) {
            __m512i x0 = _mm512_loadu_si512(x), x1 = _mm512_loadu_si512(x + 64);
            for (uint32_t o = 0; o < OCB; o++) {
                __m512i w = _mm512_set1_epi32(wq[p][o]);
                a[o][0] = _mm512_dpbusd_epi32(a[o][0], x0, w);
                a[o][1] = _mm512_dpbusd_epi32(a[o][1], x1, w);
            }
        }
        __m512i t0 = _mm512_loadu_si512(add + q0), t1 = _mm512_loadu_si512(add + q0 + 16);
        for (uint32_t o = 0; o < OCB; o++) {
            __m512i c = _mm512_set1_epi32(cst[o]);
            _mm512_storeu_si512(&accbuf[o][q0], _mm512_add_epi32(_mm512_add_epi32(a[o][0], t0), c));
            _mm512_storeu_si512(&accbuf[o][q0 + 16],
                                _mm512_add_epi32(_mm512_add_epi32(a[o][1], t1), c));
        }
    }
}
#endif

/* The GEMM of one block of OCB channels with the AVX2 or portable kernel. */
static void gemm(uint32_t K, size_t n, const int32_t *add, const int32_t *cst)
{
    for (uint32_t ob = 0; ob < OCB; ob += OCS) {
#ifdef FAST_HAVE_AVX2_KERNEL
        if (have_avx2()) {
            gemm_avx2(K, n, add, cst, ob);
            continue;
        }
#endif
        gemm_generic(K, n, add, cst, ob);
    }
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

/*
 * How a layer's acc planes were made: acc32 = S + tx32 + cst32 wrapping, where tx32 is
 * the exact tx when tx_fits (else 0 and tx64 holds it) and cst32 is the exact constant
 * when the channel's acc range fits int32 (else 0).
 */
struct accmode {
    int tx_fits;
    int32_t txmin, txmax; /* bounds of tx when tx_fits */
};

/* Bounds of tx = (arg_x * Sx) >> shr_x over Sx in [0, sxmax]; sets m->tx_fits. */
static void tx_bounds(const struct kfa_kpu_layer *l, int64_t sxmax, struct accmode *m)
{
    int64_t a = mul_shr(l->arg_x, 0, l->shr_x), b = mul_shr(l->arg_x, sxmax, l->shr_x);
    int64_t lo = a < b ? a : b, hi = a < b ? b : a;
    m->tx_fits = fits32(lo) && fits32(hi);
    m->txmin = m->tx_fits ? (int32_t)lo : 0;
    m->txmax = m->tx_fits ? (int32_t)hi : 0;
}

/* Whether a channel whose S is in [0, smax] has acc = S + tx + cst within int32. */
static int acc_fits(const struct accmode *m, int64_t smax, int64_t cst)
{
    return m->tx_fits && fits32((int64_t)m->txmin + cst) && fits32(smax + m->txmax + cst);
}

/*
 * Activation plane (grid H x Wp, row stride Wp) of one output channel. acc holds
 * S + tx32 + cst32 as struct accmode says; fits: the channel's acc is exact in int32.
 */
static void post_plane(const struct geo *g, const struct bnp *b, const struct act_tab *t,
                       const int32_t *acc, const struct accmode *m, int fits, int32_t cst32,
                       int64_t cst, enum kfa_rounding rounding)
{
    uint8_t *a = actplane;
#ifdef FAST_HAVE_AVX2_KERNEL
    if (fits && have_avx2()) {
        int32_t mn, mx;
        struct vplan p;
        vminmax(acc, g->H, g->W, g->Wp, &mn, &mx);
        if (bn_v(b, mn) == bn_v(b, mx)) { /* v constant (e.g. norm_mul 0) */
            memset(a, post1(b, t, mn, rounding), g->n);
            stats.constant++;
            return;
        }
        if (plan_build(&p, b, t, mn, mx, rounding) == 0) {
            vpost_plane(&p, acc, a, g->n, rounding);
            stats.vector++;
            return;
        }
    }
#endif
    stats.scalar++;
    for (size_t q = 0; q < g->n; q++) {
        int64_t x;
        if (fits) {
            x = acc[q];
        } else {
            /* recover S (in [0, 2^31)) from the wrapped sum, then add the exact terms */
            int32_t tq = m->tx_fits ? tx32[q] : 0;
            int64_t s = (int32_t)((uint32_t)acc[q] - (uint32_t)tq - (uint32_t)cst32);
            x = s + (m->tx_fits ? tq : tx64[q]) + cst;
        }
        a[q] = post1(b, t, x, rounding);
    }
}

#ifdef FAST_HAVE_AVX2_KERNEL
/*
 * max_2_s2, left_top_2_s2 and right_top_2_s2 of actplane with SSE2 (any x86-64), 8 outputs
 * per step; the tail of each row is done one by one, so nothing is written past out.
 */
static void pool_2s2_sse2(uint32_t type, size_t Wp, uint32_t oh, uint32_t ow, uint8_t *out)
{
    const __m128i lo8 = _mm_set1_epi16(0x00FF);
    for (uint32_t y = 0; y < oh; y++, out += ow) {
        const uint8_t *r0 = actplane + (size_t)2 * y * Wp, *r1 = r0 + Wp;
        uint32_t x = 0;
        for (; x + 8 <= ow; x += 8) {
            __m128i v = _mm_loadu_si128((const __m128i *)(r0 + 2 * x)), h;
            if (type == KFA_KPU_POOL_MAX_2_S2) {
                v = _mm_max_epu8(v, _mm_loadu_si128((const __m128i *)(r1 + 2 * x)));
                h = _mm_and_si128(_mm_max_epu8(v, _mm_srli_epi16(v, 8)), lo8);
            } else if (type == KFA_KPU_POOL_LEFT_TOP_2_S2) {
                h = _mm_and_si128(v, lo8);
            } else {
                h = _mm_srli_epi16(v, 8);
            }
            _mm_storel_epi64((__m128i *)(out + x), _mm_packus_epi16(h, h));
        }
        for (; x < ow; x++) {
            uint32_t a = r0[2 * x], b = r0[2 * x + 1], c = r1[2 * x], d = r1[2 * x + 1];
            uint32_t m0 = a > b ? a : b, m1 = c > d ? c : d;
            out[x] = (uint8_t)(type == KFA_KPU_POOL_MAX_2_S2        ? (m0 > m1 ? m0 : m1)
                               : type == KFA_KPU_POOL_LEFT_TOP_2_S2 ? a
                                                                    : b);
        }
    }
}
#endif

/* Pool actplane (grid H x Wp) into out (oh x ow, dense) (§3.4). */
static void pool_plane(const struct kfa_kpu_layer *l, size_t Wp, uint8_t *out)
{
    uint32_t H = l->in.h, W = l->in.w, oh = l->out.h, ow = l->out.w;
    const uint8_t *a = actplane;
#ifdef FAST_HAVE_AVX2_KERNEL
    if (l->pool_type == KFA_KPU_POOL_MAX_2_S2 || l->pool_type == KFA_KPU_POOL_LEFT_TOP_2_S2 ||
        l->pool_type == KFA_KPU_POOL_RIGHT_TOP_2_S2) {
        pool_2s2_sse2(l->pool_type, Wp, oh, ow, out);
        return;
    }
#endif
    switch (l->pool_type) {
    case KFA_KPU_POOL_BYPASS:
        if (Wp == W) {
            memcpy(out, a, (size_t)H * W);
            return;
        }
        for (uint32_t y = 0; y < H; y++)
            memcpy(out + (size_t)y * W, a + (size_t)y * Wp, W);
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
                        uint32_t v = a[(size_t)(y * k + dy) * Wp + x * k + dx];
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
                *out++ = a[(size_t)y * k * Wp + x * k + dx];
        return;
    }
    case KFA_KPU_POOL_MEAN_2_S1:
    case KFA_KPU_POOL_MAX_2_S1:
        for (uint32_t y = 0; y < H; y++)
            for (uint32_t x = 0; x < W; x++) {
                uint32_t y1 = y + 1 < H ? y + 1 : y, x1 = x + 1 < W ? x + 1 : x;
                uint32_t v00 = a[(size_t)y * Wp + x], v01 = a[(size_t)y * Wp + x1];
                uint32_t v10 = a[(size_t)y1 * Wp + x], v11 = a[(size_t)y1 * Wp + x1];
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

/* tx planes of a layer (or a depthwise channel) from sx[0..n). */
static void make_tx(const struct kfa_kpu_layer *l, const struct accmode *m, size_t n)
{
    if (m->tx_fits) {
#ifdef FAST_HAVE_AVX2_KERNEL
        if (have_avx2()) {
            vtx(l->arg_x, l->shr_x, sxbuf, tx32, n);
            return;
        }
#endif
        for (size_t q = 0; q < n; q++)
            tx32[q] = (int32_t)mul_shr(l->arg_x, sxbuf[q], l->shr_x);
    } else {
        for (size_t q = 0; q < n; q++)
            tx64[q] = mul_shr(l->arg_x, sxbuf[q], l->shr_x);
    }
}

static void conv_normal(const struct kfa_kpu_conv *conv, const struct kfa_kpu_layer *l,
                        const struct geo *g, const struct act_tab *t, enum kfa_rounding rounding)
{
    size_t off[9], out_plane = (size_t)l->out.h * l->out.w;
    uint32_t kk = g->k * g->k, K = g->C * kk, Ke = (K + 3u) & ~3u; /* zero taps up to 4 */
    struct accmode m;
    const int32_t *add;

    /* Sx and its term are shared by all output channels. */
    tap_sums(g, 0, g->C, sxbuf);
    tx_bounds(l, (int64_t)U8_MAX_V * K, &m);
    make_tx(l, &m, g->n);
    add = m.tx_fits ? tx32 : NULL;

    tap_offsets(g, off);
    for (uint32_t c = 0; c < g->C; c++)
        for (uint32_t t2 = 0; t2 < kk; t2++)
            rows[c * kk + t2] = planes + c * g->ps + off[t2];
    for (uint32_t k = K; k < Ke; k++)
        rows[k] = zero_row;
#ifdef FAST_HAVE_AVX2_KERNEL
    size_t np = (g->n + VNNI_PX - 1u) & ~(size_t)(VNNI_PX - 1u);
    int vnni = 0;
    if (have_vnni() && (uint64_t)Ke * np <= KFA_SOFT_KPU_PACK_MAX) {
        vnni = 1;
        pack_quads(Ke, np);
        for (size_t q = 0; q < np; q++) /* S = S' + 128 * Sx, see gemm_vnni */
            addbuf[q] = (int32_t)((uint32_t)(m.tx_fits ? tx32[q] : 0) +
                                  (uint32_t)sxbuf[q] * (uint32_t)VNNI_BIAS);
        add = addbuf;
    }
#endif

    for (uint32_t o0 = 0; o0 < l->out.c; o0 += OCB) {
        int64_t cst[OCB];
        int32_t cst32[OCB];
        int fits[OCB];
        for (uint32_t o = 0; o < OCB; o++) {
            int64_t sw = 0;
            uint32_t oc = o0 + o;
            for (uint32_t k = 0; k < Ke; k++) {
                int16_t w =
                    (oc < l->out.c && k < K) ? (int16_t)conv->weights[(size_t)oc * K + k] : 0;
                wblock[o][k] = w;
                sw += w;
            }
            cst[o] = mul_shr(l->arg_w, sw, l->shr_w) + l->arg_add * (int64_t)g->C;
            fits[o] = acc_fits(&m, (int64_t)U8_MAX_V * sw, cst[o]);
            cst32[o] = fits[o] ? (int32_t)cst[o] : 0;
        }
#ifdef FAST_HAVE_AVX2_KERNEL
        if (vnni)
            gemm_vnni(Ke, np, add, cst32);
        else
#endif
            gemm(Ke, g->n, add, cst32);
        for (uint32_t o = 0; o < OCB && o0 + o < l->out.c; o++) {
            uint32_t oc = o0 + o;
            struct bnp b;
            bnp_init(&b, conv->bn + (size_t)oc * KFA_KPU_BN_BYTES);
            post_plane(g, &b, t, accbuf[o], &m, fits[o], cst32[o], cst[o], rounding);
            pool_plane(l, g->Wp, soft_kpu_stage + (size_t)oc * out_plane);
        }
    }
}

static void conv_depthwise(const struct kfa_kpu_conv *conv, const struct kfa_kpu_layer *l,
                           const struct geo *g, const struct act_tab *t, enum kfa_rounding rounding)
{
    size_t out_plane = (size_t)l->out.h * l->out.w;
    uint32_t kk = g->k * g->k;
    struct accmode m;
    tx_bounds(l, (int64_t)U8_MAX_V * kk, &m);

    for (uint32_t c = 0; c < g->C; c++) {
        const uint8_t *p = planes + c * g->ps;
        const uint8_t *w = conv->weights + (size_t)c * kk;
        int32_t *s = accbuf[0];
        int64_t sw = 0;
        for (uint32_t t2 = 0; t2 < kk; t2++)
            sw += w[t2];
        int64_t cst = mul_shr(l->arg_w, sw, l->shr_w) + l->arg_add;
        int fits = acc_fits(&m, (int64_t)U8_MAX_V * sw, cst);
        int32_t cst32 = fits ? (int32_t)cst : 0;
        struct bnp b;
#ifdef FAST_HAVE_AVX2_KERNEL
        if (kk == 9 && fits && have_avx2()) {
            vdw3(p, g->Wp, w, l->arg_x, l->shr_x, cst32, s, g->n);
            bnp_init(&b, conv->bn + (size_t)c * KFA_KPU_BN_BYTES);
            post_plane(g, &b, t, s, &m, fits, cst32, cst, rounding);
            pool_plane(l, g->Wp, soft_kpu_stage + (size_t)c * out_plane);
            continue;
        }
#endif
        if (kk == 9) {
            int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6],
                    w7 = w[7], w8 = w[8];
            const uint8_t *r0 = p, *r1 = p + g->Wp, *r2 = p + 2u * g->Wp;
            for (size_t q = 0; q < g->n; q++) {
                s[q] = w0 * r0[q] + w1 * r0[q + 1] + w2 * r0[q + 2] + w3 * r1[q] + w4 * r1[q + 1] +
                       w5 * r1[q + 2] + w6 * r2[q] + w7 * r2[q + 1] + w8 * r2[q + 2];
                sxbuf[q] = r0[q] + r0[q + 1] + r0[q + 2] + r1[q] + r1[q + 1] + r1[q + 2] + r2[q] +
                           r2[q + 1] + r2[q + 2];
            }
        } else {
            for (size_t q = 0; q < g->n; q++) {
                s[q] = (int32_t)w[0] * p[q];
                sxbuf[q] = p[q];
            }
        }
        make_tx(l, &m, g->n);
        for (size_t q = 0; q < g->n; q++)
            s[q] =
                (int32_t)((uint32_t)s[q] + (uint32_t)(m.tx_fits ? tx32[q] : 0) + (uint32_t)cst32);
        bnp_init(&b, conv->bn + (size_t)c * KFA_KPU_BN_BYTES);
        post_plane(g, &b, t, s, &m, fits, cst32, cst, rounding);
        pool_plane(l, g->Wp, soft_kpu_stage + (size_t)c * out_plane);
    }
}

int kfa_soft_kpu_conv_fast(const struct kfa_kpu_conv *conv, uint8_t *kpu_ram,
                           enum kfa_rounding rounding)
{
    struct kfa_kpu_layer l;
    struct geo g;
    struct act_tab t;
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
    act_tab_init(&t, conv->act);
    if (l.depthwise)
        conv_depthwise(conv, &l, &g, &t, rounding);
    else
        conv_normal(conv, &l, &g, &t, rounding);
    soft_kpu_write_out(conv, &l, soft_kpu_stage, kpu_ram);
    return 0;
}
