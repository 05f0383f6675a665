/* SPDX-License-Identifier: MIT */
/*
 * The reference K210_CONV: one output pixel at a time, straight from the formulas of
 * ../shared/research/kmodel-facts.md §3.3 (NN02 k210_kernels.h:108-292) in int64, with
 * no precomputation beyond decoding. The fast path in kpu_fast.c must match it bit for
 * bit; tests and bench_kmodel compare the two. Deliberately self-contained: it shares
 * only the argument decoder and the output writer with the fast path.
 */
#include "hal/soft_kpu/soft_kpu.h"
#include "hal/soft_kpu/soft_kpu_int.h"

struct naive {
    const struct kfa_kpu_conv *c;
    const struct kfa_kpu_layer *l;
    const uint8_t *ram;
    enum kfa_rounding rounding;
};

/* Wrapping multiply: hostile tables must not cause undefined behaviour. */
static int64_t wmul(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a * (uint64_t)b);
}

static int64_t wadd(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static uint32_t weight(const struct naive *n, size_t i)
{
    if (n->c->eight_bit)
        return n->c->weights[i];
    return (uint32_t)n->c->weights[2 * i] | (uint32_t)n->c->weights[2 * i + 1] << 8;
}

/* NN02 carry_shift<int64_t, true> (runtime_op_utility.h:63-112), §3.3 "banker". */
static int64_t shift_half_even(int64_t v, uint32_t s)
{
    if (s == 0)
        return v;
    if (s > SOFT_KPU_MAX_SHIFT)
        s = SOFT_KPU_MAX_SHIFT;
    int64_t integral = v >> s;
    uint64_t frac = (uint64_t)v & ((1ull << s) - 1u);
    uint64_t half = 1ull << (s - 1u);
    int64_t sign = v < 0 ? -1 : 1;
    if (frac < half)
        return integral;
    if (frac > half)
        return integral + sign;
    return (integral & 1) ? integral + sign : integral;
}

/* SDK kpu_carry_shift (kpu.c:613-631) and NN01, §3.3 "half up". */
static int64_t shift_half_up(int64_t v, uint32_t s)
{
    if (s == 0)
        return v;
    if (s > SOFT_KPU_MAX_SHIFT)
        s = SOFT_KPU_MAX_SHIFT;
    v >>= s - 1u;
    if (v & 1)
        return v < 0 ? (v >> 1) - 1 : (v >> 1) + 1;
    return v >> 1;
}

/* Conv + BN + activation at conv pixel (y, x) of output channel o. */
static uint8_t pixel(const struct naive *n, uint32_t o, int32_t y, int32_t x)
{
    const struct kfa_kpu_layer *l = n->l;
    int32_t k = (int32_t)l->ksize, r = k / 2;
    uint32_t c0 = l->depthwise ? o : 0, c1 = l->depthwise ? o + 1 : l->in.c;
    uint32_t g_ic = l->depthwise ? 1u : l->in.c;
    int64_t s = 0, sx = 0, sw = 0;

    for (uint32_t ic = c0; ic < c1; ic++)
        for (int32_t ky = 0; ky < k; ky++)
            for (int32_t kx = 0; kx < k; kx++) {
                int32_t yy = y + ky - r, xx = x + kx - r;
                int64_t xv;
                if (yy < 0 || xx < 0 || yy >= (int32_t)l->in.h || xx >= (int32_t)l->in.w)
                    xv = l->pad_value;
                else
                    xv = n->ram[kfa_kpu_map_offset(&l->in, ic, (uint32_t)yy, (uint32_t)xx)];
                size_t wi =
                    l->depthwise
                        ? ((size_t)o * (size_t)(k * k) + (size_t)(ky * k + kx))
                        : (((size_t)o * l->in.c + ic) * (size_t)(k * k) + (size_t)(ky * k + kx));
                int64_t wv = weight(n, wi);
                s += xv * wv;
                sx += xv;
                sw += wv;
            }

    int64_t acc = s + ((l->arg_x * sx) >> l->shr_x) + ((l->arg_w * sw) >> l->shr_w) +
                  l->arg_add * (int64_t)g_ic;

    uint64_t bn = kfa_ld_u64le(n->c->bn + (size_t)o * KFA_KPU_BN_BYTES);
    int64_t mul = kfa_kpu_sext(kfa_kpu_bits(bn, 0, 24), 24);
    int64_t add = kfa_kpu_sext(kfa_kpu_bits(bn, 24, 32), 32);
    uint32_t nsh = (uint32_t)kfa_kpu_bits(bn, 56, 4);
    int64_t v = wadd(wmul(acc, mul) >> nsh, add);

    /* Last segment whose x_start < v; segment 0 if none (§3.3). */
    uint32_t seg = 0;
    for (uint32_t i = 0; i < KFA_KPU_ACT_SEGMENTS; i++) {
        int64_t xs = kfa_kpu_sext(kfa_kpu_bits(kfa_ld_u64le(n->c->act + 8u * i), 24, 36), 36);
        if (xs < v)
            seg = i;
    }
    uint64_t sg = kfa_ld_u64le(n->c->act + 8u * seg);
    uint32_t sh = (uint32_t)kfa_kpu_bits(sg, 0, 8);
    int64_t ymul = kfa_kpu_sext(kfa_kpu_bits(sg, 8, 16), 16);
    int64_t xs = kfa_kpu_sext(kfa_kpu_bits(sg, 24, 36), 36);
    int64_t prod = wmul(wadd(v, -xs), ymul);
    int64_t out =
        n->rounding == KFA_ROUND_HALF_UP ? shift_half_up(prod, sh) : shift_half_even(prod, sh);
    out = wadd(out, n->c->act[128 + seg]);
    return (uint8_t)(out < 0 ? 0 : out > 255 ? 255 : out);
}

/* Pooled output (oy, ox) of channel o (§3.4). */
static uint8_t pooled(const struct naive *n, uint32_t o, int32_t oy, int32_t ox)
{
    const struct kfa_kpu_layer *l = n->l;
    int32_t h = (int32_t)l->in.h, w = (int32_t)l->in.w;
    uint32_t sum = 0, mx = 0;

    switch (l->pool_type) {
    case KFA_KPU_POOL_MAX_2_S2:
    case KFA_KPU_POOL_MEAN_2_S2:
    case KFA_KPU_POOL_MAX_4_S4:
    case KFA_KPU_POOL_MEAN_4_S4: {
        int32_t k = (l->pool_type <= KFA_KPU_POOL_MEAN_2_S2) ? 2 : 4;
        for (int32_t dy = 0; dy < k; dy++)
            for (int32_t dx = 0; dx < k; dx++) {
                uint32_t v = pixel(n, o, oy * k + dy, ox * k + dx);
                sum += v;
                mx = v > mx ? v : mx;
            }
        if (l->pool_type == KFA_KPU_POOL_MAX_2_S2 || l->pool_type == KFA_KPU_POOL_MAX_4_S4)
            return (uint8_t)mx;
        return (uint8_t)(sum / (uint32_t)(k * k));
    }
    case KFA_KPU_POOL_LEFT_TOP_2_S2:
        return pixel(n, o, 2 * oy, 2 * ox);
    case KFA_KPU_POOL_RIGHT_TOP_2_S2:
        return pixel(n, o, 2 * oy, 2 * ox + 1);
    case KFA_KPU_POOL_LEFT_TOP_4_S4:
        return pixel(n, o, 4 * oy, 4 * ox);
    case KFA_KPU_POOL_MEAN_2_S1:
        for (int32_t dy = 0; dy < 2; dy++)
            for (int32_t dx = 0; dx < 2; dx++) {
                int32_t yy = oy + dy < h ? oy + dy : h - 1, xx = ox + dx < w ? ox + dx : w - 1;
                sum += pixel(n, o, yy, xx);
            }
        return (uint8_t)(sum / 4u);
    case KFA_KPU_POOL_MAX_2_S1:
        for (int32_t dy = 0; dy < 2; dy++)
            for (int32_t dx = 0; dx < 2; dx++)
                if (oy + dy < h && ox + dx < w) {
                    uint32_t v = pixel(n, o, oy + dy, ox + dx);
                    mx = v > mx ? v : mx;
                }
        return (uint8_t)mx;
    default:
        return pixel(n, o, oy, ox);
    }
}

int kfa_soft_kpu_conv_naive(const struct kfa_kpu_conv *conv, uint8_t *kpu_ram,
                            enum kfa_rounding rounding)
{
    struct kfa_kpu_layer l;
    int r = soft_kpu_prepare(conv, &l);
    if (r < 0)
        return r;
    struct naive n = {conv, &l, kpu_ram, rounding};
    /* Compute everything before writing: input and output may overlap in KPU RAM. */
    uint8_t *d = soft_kpu_stage;
    for (uint32_t o = 0; o < l.out.c; o++)
        for (uint32_t y = 0; y < l.out.h; y++)
            for (uint32_t x = 0; x < l.out.w; x++)
                *d++ = pooled(&n, o, (int32_t)y, (int32_t)x);
    soft_kpu_write_out(conv, &l, soft_kpu_stage, kpu_ram);
    return 0;
}
