/* SPDX-License-Identifier: MIT */
/*
 * kmodel layers that no shared model uses, in tiny files built with kmodel_writer, each
 * checked against a plain reference written here from kmodel-facts.md §2.2/§5 (CPU
 * layers) and §3.3-§3.4 (KPU conv features: all pool types, 16-bit weights, odd tables,
 * both roundings, fast vs naive).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmodel_test_util.h"
#include "kmodel_writer.h"

#define T_CONV 10240u
#define MAIN 8192u /* main buffer of the test models */

static uint8_t act_identity[144];
static const uint64_t bn_one[1024] = {[0 ... 1023] = 1}; /* mul 1, shift 0, add 0 */

static void init_act(void)
{
    kmw_act_segment(act_identity, 0, -(1ll << 35), 0, 0, 0);
    for (unsigned i = 1; i < 16; i++)
        kmw_act_segment(act_identity, i, 0, 1, 0, 0);
}

/* Layer 0: 1 x 1 x n identity conv whose dense output lands at main[0..n). */
static struct kmw *start(uint32_t n)
{
    static const uint8_t one = 1;
    init_act();
    struct kmw *w = kmw_new(1, MAIN);
    struct kmw_conv c = {.in_c = 1,
                         .in_h = 1,
                         .in_w = n,
                         .out_c = 1,
                         .ksize = 1,
                         .src_line = 0,
                         .dst_line = 100,
                         .eight_bit = 1,
                         .weights = &one,
                         .bn = bn_one,
                         .act = act_identity,
                         .main_out = 0,
                         .has_main_out = 1};
    kmw_conv_layer(w, &c);
    return w;
}

/* Build, load, run on input; returns the main buffer (malloc'd). */
static uint8_t *run(struct kmw *w, const uint8_t *in)
{
    size_t size;
    struct kfa_kmodel m;
    struct kfa_kmodel_error err;
    int r;
    uint8_t *f = kmw_finish(w, &size);
    r = kfa_kmodel_load(&m, f, size, &err);
    ck_assert_msg(r == 0, "load: %s", err.text);
    uint8_t *mb = kt_run(&m, in, KFA_SOFT_KPU_FAST, KFA_ROUND_HALF_EVEN, &r);
    ck_assert_int_eq(r, 0);
    free(f);
    return mb;
}

static float f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void pattern(uint8_t *in, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        in[i] = (uint8_t)((i * 37u + seed * 101u + (i * i) % 7u) & 0xFF);
}

START_TEST(test_dequantize_quantize_requantize)
{
    uint8_t in[64];
    pattern(in, 64, 1);
    struct kmw *w = start(64);
    kmw_output(w, 1024, 256);
    uint32_t dq[] = {1, 0, 1024, 64, fbits(0.5f), fbits(-3.0f)};
    kmw_layer_words(w, 12, dq, 6);
    uint32_t q[] = {0, 1024, 2048, 64, fbits(0.25f), fbits(1.0f)};
    kmw_layer_words(w, 11, q, 6);
    uint8_t rq[16 + 256];
    uint32_t rqh[] = {0, 2048, 3072, 64};
    memcpy(rq, rqh, 16);
    for (int i = 0; i < 256; i++)
        rq[16 + i] = (uint8_t)(255 - i);
    kmw_layer(w, 13, rq, sizeof rq);
    uint8_t *mb = run(w, in);
    for (int i = 0; i < 64; i++) {
        float d = (float)in[i] * 0.5f + -3.0f;
        ck_assert_float_eq(f32(mb + 1024 + 4 * i), d);
        float qq = roundf((d - 1.0f) * (1.f / 0.25f));
        int qi = qq < 0 ? 0 : qq > 255 ? 255 : (int)qq;
        ck_assert_uint_eq(mb[2048 + i], qi);
        ck_assert_uint_eq(mb[3072 + i], 255 - qi);
    }
    free(mb);
}
END_TEST

/* SDK kpu_carry_shift, written again here for the reference. */
static int64_t ref_carry(int64_t v, int s)
{
    if (s <= 0)
        return v;
    v >>= s - 1;
    if (v & 1)
        return v < 0 ? (v >> 1) - 1 : (v >> 1) + 1;
    return v >> 1;
}

START_TEST(test_quantized_add)
{
    uint8_t in[64];
    pattern(in, 64, 2);
    for (int same = 0; same < 2; same++) {
        struct kmw *w = start(64);
        kmw_output(w, 1024, 32);
        int32_t p[9] = {-12, 1 << 14, 10, 7, 3 << 12, same ? 10 : 8, 20, 11000, 16};
        uint32_t b[14] = {0, 0, 32, 1024, 32};
        memcpy(b + 5, p, sizeof p);
        kmw_layer_words(w, 2, b, 14);
        uint8_t *mb = run(w, in);
        for (int i = 0; i < 32; i++) {
            int64_t a = ((int64_t)in[i] + p[0]) * p[1], c = ((int64_t)in[32 + i] + p[3]) * p[4];
            int64_t v = p[2] == p[5] ? (a + c) >> p[2] : (a >> p[2]) + (c >> p[5]);
            v = ref_carry(v * p[7], p[8]) + p[6];
            v = v < 0 ? 0 : v > 255 ? 255 : v;
            ck_assert_uint_eq(mb[1024 + i], v);
        }
        free(mb);
    }
}
END_TEST

/* DEQUANTIZE (scale 1/16) of the 64 input bytes to floats at 512 for the float layers. */
static struct kmw *start_float(void)
{
    struct kmw *w = start(64);
    uint32_t dq[] = {0, 0, 512, 64, fbits(1.f / 16), fbits(-4.0f)};
    kmw_layer_words(w, 12, dq, 6);
    return w;
}

static float fin(const uint8_t *in, int i)
{
    return (float)in[i] * (1.f / 16) + -4.0f;
}

START_TEST(test_float_layers)
{
    uint8_t in[64];
    pattern(in, 64, 3);
    struct kmw *w = start_float();
    kmw_output(w, 1024, 16);
    uint32_t add[] = {0, 512, 512 + 128, 1024, 32}; /* ADD: first half + second half */
    kmw_layer_words(w, 1, add, 5);
    uint32_t gap[] = {0, 512, 1280, 16, 4}; /* GAP: 4 channels of 16 */
    kmw_layer_words(w, 5, gap, 5);
    uint32_t gmp[] = {0, 512, 1300, 16, 4}; /* GLOBAL_MAX_POOL2D */
    kmw_layer_words(w, 3, gmp, 5);
    uint32_t qgmp[] = {0, 0, 1320, 16, 4}; /* QUANTIZED_GLOBAL_MAX_POOL2D on bytes */
    kmw_layer_words(w, 4, qgmp, 5);
    uint32_t l2[] = {0, 512, 1400, 64};
    kmw_layer_words(w, 14, l2, 4);
    uint32_t sm[] = {0, 512, 1700, 64};
    kmw_layer_words(w, 15, sm, 4);
    uint32_t lg[] = {0, 512, 2000, 64};
    kmw_layer_words(w, 25, lg, 4);
    uint8_t *mb = run(w, in);
    for (int i = 0; i < 32; i++)
        ck_assert_float_eq(f32(mb + 1024 + 4 * i), fin(in, i) + fin(in, 32 + i));
    float ss = 0, mx = 1.17549435e-38f, se = 0;
    for (int i = 0; i < 64; i++) {
        ss += fin(in, i) * fin(in, i);
        mx = fmaxf(mx, fin(in, i));
    }
    for (int i = 0; i < 64; i++)
        se += expf(fin(in, i) - mx);
    for (int c = 0; c < 4; c++) {
        float s = 0, m = -INFINITY;
        int qm = 0;
        for (int k = 0; k < 16; k++) {
            s += fin(in, c * 16 + k);
            m = fmaxf(m, fin(in, c * 16 + k));
            qm = in[c * 16 + k] > qm ? in[c * 16 + k] : qm;
        }
        ck_assert_float_eq_tol(f32(mb + 1280 + 4 * c), s / 16, 1e-5f);
        ck_assert_float_eq(f32(mb + 1300 + 4 * c), m);
        ck_assert_uint_eq(mb[1320 + c], qm);
    }
    for (int i = 0; i < 64; i++) {
        ck_assert_float_eq_tol(f32(mb + 1400 + 4 * i), fin(in, i) / sqrtf(ss), 1e-5f);
        ck_assert_float_eq_tol(f32(mb + 1700 + 4 * i), expf(fin(in, i) - mx) / se, 1e-6f);
        ck_assert_float_eq_tol(f32(mb + 2000 + 4 * i), 1.f / (1.f + expf(-fin(in, i))), 1e-6f);
    }
    free(mb);
}
END_TEST

START_TEST(test_pools_flatten_resize_fc)
{
    uint8_t in[64];
    pattern(in, 64, 4);
    struct kmw *w = start_float();
    kmw_output(w, 1024, 16);
    /* in: 4 channels of 4x4. QUANTIZED_MAX_POOL2D 3x3 s2 pad 1 -> 2x2, bytes at 1024. */
    uint32_t qmp[] = {0, 0, 1024, 4, 4, 4, 2, 2, 4, 3, 3, 2, 2, 1, 1};
    kmw_layer_words(w, 8, qmp, 15);
    /* AVERAGE_POOL2D same window on the floats -> 1100 */
    uint32_t ap[] = {0, 512, 1100, 4, 4, 4, 2, 2, 4, 3, 3, 2, 2, 1, 1, 1};
    kmw_layer_words(w, 9, ap, 16);
    /* TENSORFLOW_FLATTEN floats CHW -> HWC at 1200 */
    uint32_t fl[] = {0, 512, 1200, 4, 4, 4};
    kmw_layer_words(w, 20, fl, 6);
    /* RESIZE_NEAREST_NEIGHBOR 4x4 -> 3x5 (+ quantized) */
    uint32_t rs[] = {0, 512, 1500, 4, 4, 4, 5, 3, 0};
    kmw_layer_words(w, 22, rs, 9);
    uint32_t qrs[] = {0, 0, 1800, 4, 4, 4, 5, 3, 0};
    kmw_layer_words(w, 23, qrs, 9);
    /* FULLY_CONNECTED 8 -> 3, relu6 */
    uint8_t fc[24 + 4 * (24 + 3)];
    uint32_t fch[] = {0, 512, 1900, 8, 3, 2};
    memcpy(fc, fch, 24);
    float wts[27];
    for (int i = 0; i < 27; i++)
        wts[i] = (float)((i * 7) % 11 - 5) * 0.25f;
    memcpy(fc + 24, wts, sizeof wts);
    kmw_layer(w, 18, fc, sizeof fc);
    /* CONCAT and QUANTIZED_CONCAT: bytes [8..12) + [0..4) */
    uint32_t cc[] = {0, 2000, 2, 8, 4, 0, 4};
    kmw_layer_words(w, 16, cc, 7);
    uint32_t qcc[] = {0, 2010, 2, 20, 3, 40, 5};
    kmw_layer_words(w, 17, qcc, 7);
    uint8_t *mb = run(w, in);
    for (int c = 0; c < 4; c++)
        for (int oy = 0; oy < 2; oy++)
            for (int ox = 0; ox < 2; ox++) {
                int qm = 0;
                float s = 0, n = 0;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        int y = oy * 2 - 1 + ky, x = ox * 2 - 1 + kx;
                        if (y < 0 || x < 0 || y >= 4 || x >= 4)
                            continue;
                        qm = in[c * 16 + y * 4 + x] > qm ? in[c * 16 + y * 4 + x] : qm;
                        s += fin(in, c * 16 + y * 4 + x);
                        n += 1;
                    }
                ck_assert_uint_eq(mb[1024 + c * 4 + oy * 2 + ox], qm);
                ck_assert_float_eq_tol(f32(mb + 1100 + 4 * (c * 4 + oy * 2 + ox)), s / n, 1e-5f);
            }
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            for (int c = 0; c < 4; c++)
                ck_assert_float_eq(f32(mb + 1200 + 4 * ((y * 4 + x) * 4 + c)),
                                   fin(in, c * 16 + y * 4 + x));
    for (int c = 0; c < 4; c++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 5; x++) {
                int sy = (int)floorf((float)y * (4.f / 3)), sx = (int)floorf((float)x * (4.f / 5));
                sy = sy > 3 ? 3 : sy;
                sx = sx > 3 ? 3 : sx;
                ck_assert_float_eq(f32(mb + 1500 + 4 * ((c * 3 + y) * 5 + x)),
                                   fin(in, c * 16 + sy * 4 + sx));
                ck_assert_uint_eq(mb[1800 + (c * 3 + y) * 5 + x], in[c * 16 + sy * 4 + sx]);
            }
    for (int o = 0; o < 3; o++) {
        float s = 0;
        for (int i = 0; i < 8; i++)
            s += fin(in, i) * wts[o * 8 + i];
        s += wts[24 + o];
        s = s < 0 ? 0 : s > 6 ? 6 : s;
        ck_assert_float_eq(f32(mb + 1900 + 4 * o), s);
    }
    ck_assert_int_eq(memcmp(mb + 2000, mb + 8, 4), 0);
    ck_assert_int_eq(memcmp(mb + 2004, mb + 0, 4), 0);
    ck_assert_int_eq(memcmp(mb + 2010, mb + 20, 3), 0);
    ck_assert_int_eq(memcmp(mb + 2013, mb + 40, 5), 0);
    free(mb);
}
END_TEST

/* K210_UPLOAD + identity conv + ADD_PADDING / REMOVE_PADDING round trips. */
START_TEST(test_upload_and_padding)
{
    uint8_t in[64];
    pattern(in, 64, 5);
    static const uint8_t eye[4 * 4] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    static const uint32_t widths[] = {4, 24, 40}; /* 4, 2 and 1 channels per line */
    for (int wi = 0; wi < 3; wi++) {
        uint32_t wdt = widths[wi], ch = wdt <= 16 ? 4 : 1, h = 64 / (ch * wdt), n = ch * h * wdt;
        struct kmw *w = start(64);
        kmw_output(w, 1024, n);
        uint32_t up[] = {0, 0, 2000, wdt, h, ch};
        kmw_layer_words(w, 10243, up, 6);
        struct kmw_conv c = {.in_c = ch,
                             .in_h = h,
                             .in_w = wdt,
                             .out_c = ch,
                             .ksize = 1,
                             .src_line = 2000,
                             .dst_line = 3000,
                             .eight_bit = 1,
                             .weights = eye,
                             .bn = bn_one,
                             .act = act_identity,
                             .main_out = 1024,
                             .has_main_out = 1};
        kmw_conv_layer(w, &c);
        uint8_t *mb = run(w, in);
        ck_assert_int_eq(memcmp(mb + 1024, in, n), 0);
        free(mb);
    }
    /* ADD_PADDING 4 bytes -> 4x4 planes, identity conv, REMOVE_PADDING picks (0,0). */
    struct kmw *w = start(64);
    kmw_output(w, 1200, 4);
    uint32_t ap[] = {0, 8, 4000, 4};
    kmw_layer_words(w, 10241, ap, 4);
    struct kmw_conv c = {.in_c = 4,
                         .in_h = 4,
                         .in_w = 4,
                         .out_c = 4,
                         .ksize = 1,
                         .src_line = 4000,
                         .dst_line = 5000,
                         .eight_bit = 1,
                         .weights = eye,
                         .bn = bn_one,
                         .act = act_identity,
                         .main_out = 1100,
                         .has_main_out = 1};
    kmw_conv_layer(w, &c);
    uint32_t rp[] = {1, 1100, 1200, 4};
    kmw_layer_words(w, 10242, rp, 4);
    uint8_t *mb = run(w, in);
    ck_assert_int_eq(memcmp(mb + 1200, in + 8, 4), 0);
    free(mb);
}
END_TEST

/* Pool types on an identity conv (activation = input) against a reference pool. */
START_TEST(test_conv_pools_reference)
{
    uint32_t pool = (uint32_t)_i, H = 8, W = 36, C = 2; /* 2x2 pools: 16 vector + 2 tail */
    uint8_t in[2 * 8 * 36];
    pattern(in, sizeof in, 6 + pool);
    static const uint8_t eye2[4] = {1, 0, 0, 1};
    init_act();
    struct kmw *w = kmw_new(1, MAIN);
    struct kmw_conv c = {.in_c = C,
                         .in_h = H,
                         .in_w = W,
                         .out_c = C,
                         .ksize = 1,
                         .pool_type = pool,
                         .src_line = 0,
                         .dst_line = 100,
                         .eight_bit = 1,
                         .weights = eye2,
                         .bn = bn_one,
                         .act = act_identity,
                         .main_out = 0,
                         .has_main_out = 1};
    kmw_conv_layer(w, &c);
    kmw_output(w, 0, 4);
    uint8_t *mb = run(w, in);
    uint32_t k = (pool == 1 || pool == 2 || pool == 5 || pool == 6) ? 2
                 : (pool == 3 || pool == 4 || pool == 7)            ? 4
                                                                    : 1;
    uint32_t oh = H / k, ow = W / k;
    for (uint32_t ch = 0; ch < C; ch++)
        for (uint32_t y = 0; y < oh; y++)
            for (uint32_t x = 0; x < ow; x++) {
                const uint8_t *p = in + ch * H * W;
                uint32_t want = 0, sum = 0, mx = 0;
#define AT(yy, xx) p[(yy)*W + (xx)]
                switch (pool) {
                case 0:
                    want = AT(y, x);
                    break;
                case 1:
                case 2:
                case 3:
                case 4:
                    for (uint32_t dy = 0; dy < k; dy++)
                        for (uint32_t dx = 0; dx < k; dx++) {
                            sum += AT(y * k + dy, x * k + dx);
                            mx = AT(y * k + dy, x * k + dx) > mx ? AT(y * k + dy, x * k + dx) : mx;
                        }
                    want = (pool == 1 || pool == 3) ? mx : sum / (k * k);
                    break;
                case 5:
                case 7:
                    want = AT(y * k, x * k);
                    break;
                case 6:
                    want = AT(y * 2, x * 2 + 1);
                    break;
                case 8:
                    for (uint32_t dy = 0; dy < 2; dy++)
                        for (uint32_t dx = 0; dx < 2; dx++)
                            sum += AT(y + dy < H ? y + dy : H - 1, x + dx < W ? x + dx : W - 1);
                    want = sum / 4;
                    break;
                case 9:
                    for (uint32_t dy = 0; dy < 2; dy++)
                        for (uint32_t dx = 0; dx < 2; dx++)
                            if (y + dy < H && x + dx < W)
                                mx = AT(y + dy, x + dx) > mx ? AT(y + dy, x + dx) : mx;
                    want = mx;
                    break;
                }
#undef AT
                ck_assert_msg(mb[(ch * oh + y) * ow + x] == want, "pool %u (%u,%u,%u)", pool, ch, y,
                              x);
            }
    free(mb);
}
END_TEST

/*
 * The instruction-set levels the fast path can run at on this CPU (portable first), for
 * comparing each with the naive path. Returns how many were written to lv (1 to 3).
 */
static int isa_levels(int lv[3])
{
    int n = 0, prev = -1;
    for (int cap = KFA_SOFT_KPU_ISA_PORTABLE; cap <= KFA_SOFT_KPU_ISA_AVX512VNNI; cap++) {
        int got = kfa_soft_kpu_limit_isa((enum kfa_soft_kpu_isa)cap);
        if (got != prev)
            lv[n++] = got;
        prev = got;
    }
    kfa_soft_kpu_limit_isa(KFA_SOFT_KPU_ISA_BEST);
    return n;
}

static uint32_t rnd(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 8) & 0xFFFFu;
}

/* Random convs: every pool, 1x1/3x3, depthwise, 8/16-bit, odd tables; fast == naive. */
START_TEST(test_conv_fast_vs_naive)
{
    unsigned seed = 12345u + (unsigned)_i;
#define RND() rnd(&seed)
    uint32_t pool = (uint32_t)_i % 10, ks = (_i / 10) % 2 ? 3 : 1, dw = (_i / 20) % 2;
    int eight = _i < 40;
    uint32_t C = 3 + RND() % 6, OC = dw ? C : 1 + RND() % 9, H = 4 + RND() % 13, W = 4 + RND() % 70;
    size_t nw = (size_t)OC * (dw ? 1 : C) * ks * ks;
    uint16_t *wts = malloc(nw * 2);
    uint8_t *w8 = (uint8_t *)wts;
    for (size_t i = 0; i < nw; i++) {
        if (eight)
            w8[i] = (uint8_t)RND();
        else
            wts[i] = (uint16_t)RND();
    }
    uint64_t bn[16];
    for (uint32_t o = 0; o < OC; o++)
        bn[o] = kmw_bn((int32_t)(RND() % 4000) - 1000, 8 + RND() % 8, (int32_t)RND() - 30000);
    uint8_t act[144];
    for (unsigned i = 0; i < 16; i++) /* unsorted starts, negative slopes, big shifts */
        kmw_act_segment(act, i,
                        i == 0 ? -(1ll << 35) : (int64_t)(RND() % 2000) - 1000 + 37 * (int64_t)i,
                        (int32_t)(RND() % 3000) - 1000, RND() % 30, (uint8_t)RND());
    uint8_t *in = malloc((size_t)C * H * W);
    for (size_t i = 0; i < (size_t)C * H * W; i++)
        in[i] = (uint8_t)RND();
    struct kmw *w = kmw_new(eight ? 1 : 0, 1u << 17);
    struct kmw_conv c = {.in_c = C,
                         .in_h = H,
                         .in_w = W,
                         .out_c = OC,
                         .ksize = ks,
                         .depthwise = dw,
                         .pool_type = pool,
                         .pad_value = RND() & 0xFF,
                         .src_line = 0,
                         .dst_line = 8000,
                         .arg_x = (int32_t)(RND() << 4) - 500000,
                         .arg_w = (int32_t)RND() - 30000,
                         .shr_x = RND() % 16,
                         .shr_w = RND() % 16,
                         .arg_add = (int64_t)RND() * 977 - 30000000,
                         .eight_bit = eight,
                         .weights = wts,
                         .bn = bn,
                         .act = act,
                         .main_out = 0,
                         .has_main_out = 1};
    kmw_conv_layer(w, &c);
    kmw_output(w, 0, 4);
    size_t size;
    uint8_t *f = kmw_finish(w, &size);
    struct kfa_kmodel m;
    struct kfa_kmodel_error err;
    int r = kfa_kmodel_load(&m, f, size, &err);
    ck_assert_msg(r == 0, "load: %s", err.text);
    int lv[3], nl = isa_levels(lv);
    for (int li = 0; li < nl; li++)
        for (int rounding = 0; rounding < 2; rounding++) {
            uint32_t l0, m0, l1, m1;
            kfa_soft_kpu_limit_isa((enum kfa_soft_kpu_isa)lv[li]);
            kfa_soft_kpu_check_counts(&l0, &m0);
            uint8_t *mb = kt_run(&m, in, KFA_SOFT_KPU_CHECK, (enum kfa_rounding)rounding, &r);
            kfa_soft_kpu_limit_isa(KFA_SOFT_KPU_ISA_BEST);
            ck_assert_int_eq(r, 0);
            kfa_soft_kpu_check_counts(&l1, &m1);
            ck_assert_uint_eq(l1 - l0, 1);
            ck_assert_msg(m1 == m0, "case %d (pool %u k %u dw %u C %u OC %u %ux%u, isa %d) differs",
                          _i, pool, ks, dw, C, OC, H, W, lv[li]);
            free(mb);
        }
    free(f);
    free(in);
    free(wts);
#undef RND
}
END_TEST

/* How the fast path must post-process every channel of a case (kfa_soft_kpu_fast_stats). */
enum { PATH_VECTOR, PATH_CONSTANT, PATH_SCALAR };

/*
 * Run the one-conv model c on in, in CHECK mode (fast and naive on copies, must agree) at
 * every ISA level and both roundings. Where AVX2 is in effect every output channel must
 * have taken path `want`; without it, the scalar one.
 */
static void check_post_path(const struct kmw_conv *c, const uint8_t *in, int want, const char *what)
{
    struct kmw *w = kmw_new(1, 1u << 17);
    kmw_conv_layer(w, c);
    kmw_output(w, 0, 4);
    size_t size;
    uint8_t *f = kmw_finish(w, &size);
    struct kfa_kmodel m;
    struct kfa_kmodel_error err;
    ck_assert_msg(kfa_kmodel_load(&m, f, size, &err) == 0, "%s: load: %s", what, err.text);
    int lv[3], nl = isa_levels(lv);
    for (int li = 0; li < nl; li++)
        for (int rounding = 0; rounding < 2; rounding++) {
            struct kfa_soft_kpu_fast_stats s0, s1;
            uint32_t l0, m0, l1, m1;
            int r;
            kfa_soft_kpu_limit_isa((enum kfa_soft_kpu_isa)lv[li]);
            kfa_soft_kpu_check_counts(&l0, &m0);
            kfa_soft_kpu_fast_stats(&s0);
            uint8_t *mb = kt_run(&m, in, KFA_SOFT_KPU_CHECK, (enum kfa_rounding)rounding, &r);
            kfa_soft_kpu_fast_stats(&s1);
            kfa_soft_kpu_check_counts(&l1, &m1);
            kfa_soft_kpu_limit_isa(KFA_SOFT_KPU_ISA_BEST);
            ck_assert_int_eq(r, 0);
            ck_assert_uint_eq(l1 - l0, 1);
            ck_assert_msg(m1 == m0, "%s: fast != naive (isa %d, rounding %d)", what, lv[li],
                          rounding);
            uint32_t got[3] = {s1.vector - s0.vector, s1.constant - s0.constant,
                               s1.scalar - s0.scalar};
            int path = lv[li] >= KFA_SOFT_KPU_ISA_AVX2 ? want : PATH_SCALAR;
            ck_assert_msg(got[path] == c->out_c && got[0] + got[1] + got[2] == c->out_c,
                          "%s (isa %d): vector %u constant %u scalar %u, want all in path %d", what,
                          lv[li], got[0], got[1], got[2], path);
            free(mb);
        }
    free(f);
}

/* A ReLU table as nncase writes it (kmodel-facts.md §3.3): y = v * ym >> sh for v > 0. */
static void act_relu(uint8_t act[144], int32_t ym, uint32_t sh)
{
    kmw_act_segment(act, 0, -(1ll << 35), 0, 0, 0);
    for (unsigned i = 1; i < 10; i++)
        kmw_act_segment(act, i, -300000000ll * (int64_t)(10 - i), 0, 0, 0);
    kmw_act_segment(act, 10, 0, ym, sh, 0);
    for (unsigned i = 11; i < 16; i++)
        kmw_act_segment(act, i, 0x7FFFFFFF0ll + i, 0, 0, 0);
}

/*
 * Every post-processing path of the fast conv, each checked against the naive one at all
 * ISA levels and both roundings, and each proven taken through the path counters:
 * int32 vector (one interval, up to 8, up to 16, unsorted table, shift 0, ties),
 * constant planes, and the int64 fallback for each range that does not fit in int32.
 */
START_TEST(test_conv_post_paths)
{
    enum { C = 4, OC = 6, H = 9, W = 37 };
    uint8_t in[C * H * W], wts[OC * C * 9], wdw[C];
    uint64_t bn[OC];
    uint8_t act[144];
    pattern(in, sizeof in, 3);
    in[5] = 0;
    in[6] = 255;
    for (size_t i = 0; i < sizeof wts; i++)
        wts[i] = (uint8_t)((i * 7u + 3u) % 16u);
    for (unsigned c = 0; c < C; c++)
        wdw[c] = (uint8_t)(200 + c);
    struct kmw_conv base = {.in_c = C,
                            .in_h = H,
                            .in_w = W,
                            .out_c = OC,
                            .ksize = 3,
                            .pad_value = 7,
                            .src_line = 0,
                            .dst_line = 8000,
                            .eight_bit = 1,
                            .weights = wts,
                            .bn = bn,
                            .act = act,
                            .main_out = 0,
                            .has_main_out = 1};
    /* dw: 1x1 depthwise with weight ~200 and bn 1: v = acc = 200 * x, in [0, 51765] */
    struct kmw_conv dw = base;
    dw.out_c = C;
    dw.ksize = 1;
    dw.depthwise = 1;
    dw.weights = wdw;

    /* ReLU on a 3x3 conv: v = acc * 1000 >> 15 - 2000, two reachable intervals */
    for (unsigned o = 0; o < OC; o++)
        bn[o] = kmw_bn(1000 + 50 * (int32_t)o, 15, -2000);
    act_relu(act, 24000, 10);
    check_post_path(&base, in, PATH_VECTOR, "relu");

    /* one interval: v > 0 everywhere (add 5000) */
    for (unsigned o = 0; o < OC; o++)
        bn[o] = kmw_bn(1000, 15, 5000);
    act_relu(act, 3, 6);
    check_post_path(&base, in, PATH_VECTOR, "one interval");

    /* 16 intervals: x_start 0, 3400, ... within v; mixed slope signs, shifts 0..12, ties */
    for (unsigned o = 0; o < C; o++)
        bn[o] = kmw_bn(1, 0, 0);
    kmw_act_segment(act, 0, -(1ll << 35), 0, 0, 9);
    for (unsigned i = 1; i < 16; i++)
        kmw_act_segment(act, i, 3400ll * (i - 1), (i % 2 ? 1 : -1) * (int32_t)(1 + 37 * (i % 5)),
                        i % 4 == 0   ? 0
                        : i % 3 == 0 ? 1
                                     : i,
                        (uint8_t)(17 * i));
    check_post_path(&dw, in, PATH_VECTOR, "16 intervals");

    /* the extremes only in the last column (the scalar tail of the range scan) */
    uint8_t in2[C * H * W];
    for (size_t i = 0; i < sizeof in2; i++)
        in2[i] = (uint8_t)(40 + in[i] % 60);
    in2[4 * W + W - 1] = 255;
    in2[2 * W + W - 1] = 0;
    check_post_path(&dw, in2, PATH_VECTOR, "extremes at a row end");

    /* the same table with x_starts out of order: some segments unreachable */
    kmw_act_segment(act, 5, 40000, 3, 2, 100);
    kmw_act_segment(act, 12, 5000, -5, 3, 200);
    check_post_path(&dw, in, PATH_VECTOR, "unsorted table");

    /* 5 intervals of half-ties: y = (v - x_start) >> 1 */
    kmw_act_segment(act, 0, -(1ll << 35), 0, 0, 0);
    for (unsigned i = 1; i < 16; i++)
        kmw_act_segment(act, i, i < 5 ? 9001ll * i : 9001ll * 4, 1, 1, (uint8_t)(10 * i));
    check_post_path(&dw, in, PATH_VECTOR, "ties");

    /* bias << shift beyond int32: the general rounding, not the folded one */
    act_relu(act, 600, 24);
    kmw_act_segment(act, 10, -1, 600, 24, 250);
    check_post_path(&dw, in, PATH_VECTOR, "large bias and shift");

    /* norm_mul 0: every pixel the same */
    for (unsigned o = 0; o < OC; o++)
        bn[o] = kmw_bn(0, 3, 1234 * (int32_t)o - 3000);
    act_relu(act, 1, 4);
    check_post_path(&base, in, PATH_CONSTANT, "constant");

    /* int64 fallbacks: arg_add * C beyond int32 */
    struct kmw_conv c2 = base;
    c2.arg_add = 1ll << 36;
    for (unsigned o = 0; o < OC; o++)
        bn[o] = kmw_bn(1, 15, 0);
    act_relu(act, 64, 0);
    kmw_act_segment(act, 10, (1ll << 36) * C / 32768, 64, 0, 0);
    check_post_path(&c2, in, PATH_SCALAR, "acc beyond int32");

    /* tx = arg_x * Sx beyond int32 */
    c2 = base;
    c2.arg_x = (1 << 23) - 1;
    c2.shr_x = 0;
    act_relu(act, 1, 12);
    check_post_path(&c2, in, PATH_SCALAR, "tx beyond int32");

    /* v = acc * norm_mul beyond int32 */
    for (unsigned o = 0; o < C; o++)
        bn[o] = kmw_bn((1 << 23) - 1, 0, 0);
    act_relu(act, 1, 35);
    check_post_path(&dw, in, PATH_SCALAR, "v beyond int32");

    /* (v - x_start) * y_mul beyond 2^30 */
    for (unsigned o = 0; o < C; o++)
        bn[o] = kmw_bn(1, 0, 0);
    act_relu(act, 32767, 25);
    kmw_act_segment(act, 10, -1000, 32767, 25, 3);
    check_post_path(&dw, in, PATH_SCALAR, "product beyond 2^30");

    /* ReLU whose product passes 2^30 only where the output is already 255 */
    act_relu(act, 1024, 13);
    check_post_path(&dw, in, PATH_VECTOR, "saturating relu");
    act_relu(act, 1024, 24); /* products above 2^31, outputs 128..131: no clamp point */
    kmw_act_segment(act, 10, -(1ll << 21), 1024, 24, 0);
    check_post_path(&dw, in, PATH_SCALAR, "large products below saturation");

    /* activation shift 31 */
    act_relu(act, 30000, 31);
    kmw_act_segment(act, 10, -40000, 30000, 31, 3);
    check_post_path(&dw, in, PATH_SCALAR, "shift 31");
}
END_TEST

/*
 * The shared detection models on a pseudo-random frame: the fast path at every ISA level
 * leaves the same main buffer as the naive path, under both roundings.
 */
START_TEST(test_real_models_isa_levels)
{
    static const char *const models[] = {"maixpy_facedetect_320x240", "yolo2_voc20_320x240",
                                         "mask_yolo2_320x240", "face_mask_detect5_320x256"};
    char rel[128];
    snprintf(rel, sizeof rel, "models/%s.kmodel", models[_i]);
    const char *path = kt_data_path(rel);
    if (!path) {
        const char *ci = getenv("CI");
        ck_assert_msg(!(ci && strcmp(ci, "true") == 0), "test data %s missing in CI", rel);
        fprintf(stderr, "SKIP: %s not found (set KPU_TEST_DATA)\n", rel);
        return;
    }
    size_t size;
    uint8_t *file = kt_read_file(path, &size);
    ck_assert_ptr_nonnull(file);
    struct kfa_kmodel m;
    struct kfa_kmodel_error err;
    ck_assert_msg(kfa_kmodel_load(&m, file, size, &err) == 0, "load: %s", err.text);
    uint8_t *in = malloc(m.input_bytes);
    unsigned seed = 77u + (unsigned)_i;
    for (size_t i = 0; i < m.input_bytes; i++)
        in[i] = (uint8_t)(rnd(&seed) >> 4);
    int lv[3], nl = isa_levels(lv), r;
    uint32_t fb0 = kfa_soft_kpu_fallbacks();
    for (int rounding = 0; rounding < 2; rounding++) {
        uint8_t *ref = kt_run(&m, in, KFA_SOFT_KPU_NAIVE, (enum kfa_rounding)rounding, &r);
        ck_assert_int_eq(r, 0);
        for (int li = 0; li < nl; li++) {
            kfa_soft_kpu_limit_isa((enum kfa_soft_kpu_isa)lv[li]);
            uint8_t *mb = kt_run(&m, in, KFA_SOFT_KPU_FAST, (enum kfa_rounding)rounding, &r);
            kfa_soft_kpu_limit_isa(KFA_SOFT_KPU_ISA_BEST);
            ck_assert_int_eq(r, 0);
            ck_assert_msg(memcmp(ref, mb, m.main_size) == 0, "%s: isa %d rounding %d differs",
                          models[_i], lv[li], rounding);
            free(mb);
        }
        free(ref);
    }
    ck_assert_uint_eq(kfa_soft_kpu_fallbacks(), fb0); /* the fast path ran every layer */
    free(in);
    free(file);
}
END_TEST

/* The two rounding rules on an exact tie: (v - 0) * 1 >> 1 with v odd. */
START_TEST(test_rounding_ties)
{
    uint8_t act[144];
    kmw_act_segment(act, 0, -(1ll << 35), 0, 0, 0);
    for (unsigned i = 1; i < 16; i++)
        kmw_act_segment(act, i, 0, 1, 1, 0); /* out = round(v / 2) */
    static const uint8_t one = 1;
    uint8_t in[4] = {1, 3, 5, 7};
    int want[2][4] = {{0, 2, 2, 4}, {1, 2, 3, 4}}; /* half-even, half-up */
    for (int rnd = 0; rnd < 2; rnd++) {
        struct kmw *w = kmw_new(1, 64);
        struct kmw_conv c = {.in_c = 1,
                             .in_h = 1,
                             .in_w = 4,
                             .out_c = 1,
                             .ksize = 1,
                             .dst_line = 10,
                             .eight_bit = 1,
                             .weights = &one,
                             .bn = bn_one,
                             .act = act,
                             .main_out = 0,
                             .has_main_out = 1};
        kmw_conv_layer(w, &c);
        kmw_output(w, 0, 4);
        size_t size;
        uint8_t *f = kmw_finish(w, &size);
        struct kfa_kmodel m;
        int r;
        ck_assert_int_eq(kfa_kmodel_load(&m, f, size, NULL), 0);
        for (int impl = 0; impl < 2; impl++) {
            uint8_t *mb = kt_run(&m, in, (enum kfa_soft_kpu_impl)impl, (enum kfa_rounding)rnd, &r);
            ck_assert_int_eq(r, 0);
            for (int i = 0; i < 4; i++)
                ck_assert_int_eq(mb[i], want[rnd][i]);
            free(mb);
        }
        free(f);
    }
}
END_TEST

static Suite *layers_suite(void)
{
    Suite *s = suite_create("kmodel_layers");
    TCase *t = tcase_create("cpu");
    tcase_add_test(t, test_dequantize_quantize_requantize);
    tcase_add_test(t, test_quantized_add);
    tcase_add_test(t, test_float_layers);
    tcase_add_test(t, test_pools_flatten_resize_fc);
    tcase_add_test(t, test_upload_and_padding);
    suite_add_tcase(s, t);
    t = tcase_create("kpu");
    tcase_add_loop_test(t, test_conv_pools_reference, 0, 10);
    tcase_add_loop_test(t, test_conv_fast_vs_naive, 0, 60);
    tcase_add_test(t, test_rounding_ties);
    tcase_add_test(t, test_conv_post_paths);
    tcase_add_loop_test(t, test_real_models_isa_levels, 0, 4);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(layers_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
