/* SPDX-License-Identifier: MIT */
/*
 * kmodel v3 loader and interpreter (see kmodel.h). The loader walks the file once and
 * validates every layer body against the bytes present and against main_mem_usage and
 * the 2 MiB KPU RAM; kfa_kmodel_run() then trusts those checks and executes the layers
 * in order: CPU layers here, K210_CONV through kfa_hal_kpu_conv().
 *
 * Layer semantics follow the SDK's v3 runtime as described in
 * ../shared/research/kmodel-facts.md §2.2 and §5 (SDK kpu.c:745-1362); body layouts are
 * SDK kpu.h:435-665. Nothing here allocates; float tensors in the main buffer may be
 * unaligned and are accessed through memcpy.
 */
#include "kmodel/kmodel.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "kmodel/kpu_layer.h"

/* Layer type ids, kmodel-facts.md §2.1 (SDK kpu.h:376-408). */
enum {
    KL_ADD = 1,
    KL_QUANTIZED_ADD = 2,
    KL_GLOBAL_MAX_POOL2D = 3,
    KL_QUANTIZED_GLOBAL_MAX_POOL2D = 4,
    KL_GLOBAL_AVERAGE_POOL2D = 5,
    KL_QUANTIZED_GLOBAL_AVERAGE_POOL2D = 6,
    KL_MAX_POOL2D = 7,
    KL_QUANTIZED_MAX_POOL2D = 8,
    KL_AVERAGE_POOL2D = 9,
    KL_QUANTIZED_AVERAGE_POOL2D = 10,
    KL_QUANTIZE = 11,
    KL_DEQUANTIZE = 12,
    KL_REQUANTIZE = 13,
    KL_L2_NORMALIZATION = 14,
    KL_SOFTMAX = 15,
    KL_CONCAT = 16,
    KL_QUANTIZED_CONCAT = 17,
    KL_FULLY_CONNECTED = 18,
    KL_QUANTIZED_FULLY_CONNECTED = 19,
    KL_TENSORFLOW_FLATTEN = 20,
    KL_QUANTIZED_TENSORFLOW_FLATTEN = 21,
    KL_RESIZE_NEAREST_NEIGHBOR = 22,
    KL_QUANTIZED_RESIZE_NEAREST_NEIGHBOR = 23,
    KL_CHANNELWISE_DEQUANTIZE = 24,
    KL_LOGISTIC = 25,
    KL_K210_CONV = 10240,
    KL_K210_ADD_PADDING = 10241,
    KL_K210_REMOVE_PADDING = 10242,
    KL_K210_UPLOAD = 10243,
};

#define KMODEL_V3 3u
#define KMODEL_HEADER_BYTES 28u       /* seven u32 (§2) */
#define KMODEL_PAIR_BYTES 8u          /* {u32, u32} output and layer header entries */
#define KMODEL_KMDL_MAGIC 0x4C444D4Bu /* 'KMDL' little-endian: kmodel v4/v5 (§1) */
#define KMODEL_V3_SWAPPED 0x03000000u /* v3 with every word byte-swapped (§1) */
#define KMODEL_LAST_BODY_SLACK 4u     /* last body may end this far past EOF (§2) */
#define KLF_MAIN_MEM_OUT 1u           /* body flags bit 0 */
#define PADDING_PLANE_H 4u            /* K210_ADD_PADDING: 4x4 planes, 4 ch per line */
#define PADDING_GROUP 4u
#define PADDING_ROW_PITCH 16u
#define REMOVE_PADDING_STRIDE 16u /* out[c] = in[c * 16] (§2.2) */
#define ACT_LINEAR 0u             /* FULLY_CONNECTED / AVERAGE_POOL2D act */
#define ACT_RELU 1u
#define ACT_RELU6 2u
#define L2_EPSILON 1e-10f /* SDK kpu.c:1079-1094 */
#define QUANT_MAX 255
#define POOL_PARAM_MAX 0xFFFFu /* our limit on pool kernel, stride, padding */

/* ---- small helpers ---------------------------------------------------------------- */

static float ld_f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, sizeof f);
    return f;
}

static void st_f32(uint8_t *p, float f)
{
    memcpy(p, &f, sizeof f);
}

/* Body word k (u32 LE); callers have checked that the body holds it. */
static uint32_t bw(const uint8_t *body, unsigned k)
{
    return kfa_ld_u32le(body + 4u * k);
}

struct text {
    char *buf;
    size_t cap, len;
};

static void tx_str(struct text *t, const char *s)
{
    while (*s && t->len + 1 < t->cap)
        t->buf[t->len++] = *s++;
    t->buf[t->len] = '\0';
}

static void tx_u64(struct text *t, uint64_t v)
{
    char d[24];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n > 0 && t->len + 1 < t->cap)
        t->buf[t->len++] = d[--n];
    t->buf[t->len] = '\0';
}

/* Fill *err with "layer N (TYPE): " or "header: " and return code. */
static struct text err_begin(struct kfa_kmodel_error *err, int code, int32_t layer, uint32_t type)
{
    struct text t = {err->text, sizeof err->text, 0};
    err->code = code;
    err->layer = layer;
    err->layer_type = type;
    err->text[0] = '\0';
    if (layer < 0) {
        tx_str(&t, "header: ");
    } else {
        tx_str(&t, "layer ");
        tx_u64(&t, (uint64_t)layer);
        tx_str(&t, " (");
        tx_str(&t, kfa_kmodel_layer_name(type));
        tx_str(&t, "): ");
    }
    return t;
}

/* "<what> <value> <rel> <limit>" error. */
static int fail(struct kfa_kmodel_error *err, int code, int32_t layer, uint32_t type,
                const char *what, uint64_t value, const char *rel, uint64_t limit)
{
    if (err) {
        struct text t = err_begin(err, code, layer, type);
        tx_str(&t, what);
        tx_str(&t, " ");
        tx_u64(&t, value);
        tx_str(&t, " ");
        tx_str(&t, rel);
        tx_str(&t, " ");
        tx_u64(&t, limit);
    }
    return code;
}

static int fail_msg(struct kfa_kmodel_error *err, int code, int32_t layer, uint32_t type,
                    const char *msg)
{
    if (err) {
        struct text t = err_begin(err, code, layer, type);
        tx_str(&t, msg);
    }
    return code;
}

const char *kfa_kmodel_layer_name(uint32_t type)
{
    switch (type) {
    case KL_ADD:
        return "ADD";
    case KL_QUANTIZED_ADD:
        return "QUANTIZED_ADD";
    case KL_GLOBAL_MAX_POOL2D:
        return "GLOBAL_MAX_POOL2D";
    case KL_QUANTIZED_GLOBAL_MAX_POOL2D:
        return "QUANTIZED_GLOBAL_MAX_POOL2D";
    case KL_GLOBAL_AVERAGE_POOL2D:
        return "GLOBAL_AVERAGE_POOL2D";
    case KL_QUANTIZED_GLOBAL_AVERAGE_POOL2D:
        return "QUANTIZED_GLOBAL_AVERAGE_POOL2D";
    case KL_MAX_POOL2D:
        return "MAX_POOL2D";
    case KL_QUANTIZED_MAX_POOL2D:
        return "QUANTIZED_MAX_POOL2D";
    case KL_AVERAGE_POOL2D:
        return "AVERAGE_POOL2D";
    case KL_QUANTIZED_AVERAGE_POOL2D:
        return "QUANTIZED_AVERAGE_POOL2D";
    case KL_QUANTIZE:
        return "QUANTIZE";
    case KL_DEQUANTIZE:
        return "DEQUANTIZE";
    case KL_REQUANTIZE:
        return "REQUANTIZE";
    case KL_L2_NORMALIZATION:
        return "L2_NORMALIZATION";
    case KL_SOFTMAX:
        return "SOFTMAX";
    case KL_CONCAT:
        return "CONCAT";
    case KL_QUANTIZED_CONCAT:
        return "QUANTIZED_CONCAT";
    case KL_FULLY_CONNECTED:
        return "FULLY_CONNECTED";
    case KL_QUANTIZED_FULLY_CONNECTED:
        return "QUANTIZED_FULLY_CONNECTED";
    case KL_TENSORFLOW_FLATTEN:
        return "TENSORFLOW_FLATTEN";
    case KL_QUANTIZED_TENSORFLOW_FLATTEN:
        return "QUANTIZED_TENSORFLOW_FLATTEN";
    case KL_RESIZE_NEAREST_NEIGHBOR:
        return "RESIZE_NEAREST_NEIGHBOR";
    case KL_QUANTIZED_RESIZE_NEAREST_NEIGHBOR:
        return "QUANTIZED_RESIZE_NEAREST_NEIGHBOR";
    case KL_CHANNELWISE_DEQUANTIZE:
        return "CHANNELWISE_DEQUANTIZE";
    case KL_LOGISTIC:
        return "LOGISTIC";
    case KL_K210_CONV:
        return "K210_CONV";
    case KL_K210_ADD_PADDING:
        return "K210_ADD_PADDING";
    case KL_K210_REMOVE_PADDING:
        return "K210_REMOVE_PADDING";
    case KL_K210_UPLOAD:
        return "K210_UPLOAD";
    default:
        return "UNKNOWN";
    }
}

const char *kfa_kmodel_strerror(int code)
{
    switch (code) {
    case 0:
        return "ok";
    case KFA_KMODEL_E_FORMAT:
        return "format";
    case KFA_KMODEL_E_TRUNCATED:
        return "truncated";
    case KFA_KMODEL_E_BOUNDS:
        return "bounds";
    case KFA_KMODEL_E_UNSUPPORTED:
        return "unsupported";
    case KFA_KMODEL_E_INPUT:
        return "input";
    case KFA_KMODEL_E_BUFFER:
        return "buffer";
    default:
        return "unknown";
    }
}

/* ---- layout of K210_UPLOAD maps (§4) ---------------------------------------------- */

/* The KPU RAM map the SDK's upload uses for a width x height x channels tensor. */
static struct kfa_kpu_map upload_map(uint32_t line, uint32_t w, uint32_t h, uint32_t c)
{
    struct kfa_kpu_map m = {c, h, w, line, 0, 1, 1};
    if (w <= 16u) {
        m.group = 4;
    } else if (w <= 32u) {
        m.group = 2;
    } else {
        m.group = 1;
        m.row_lines = (w + KFA_KPU_LINE_BYTES - 1u) / KFA_KPU_LINE_BYTES;
    }
    m.ch_lines = m.row_lines * h;
    return m;
}

/* Copy dense CHW bytes into map m of KPU RAM. */
static void upload(uint8_t *ram, const struct kfa_kpu_map *m, const uint8_t *src)
{
    for (uint32_t c = 0; c < m->c; c++)
        for (uint32_t y = 0; y < m->h; y++) {
            memcpy(ram + kfa_kpu_map_offset(m, c, y, 0), src, m->w);
            src += m->w;
        }
}

/* ---- load-time validation ---------------------------------------------------------- */

struct vctx {
    const struct kfa_kmodel *m;
    struct kfa_kmodel_error *err;
    int32_t layer;
    uint32_t type;
    const uint8_t *body;
    size_t body_off;  /* file offset of the body */
    size_t avail;     /* body bytes actually present in the file */
    uint64_t kpu_end; /* highest KPU RAM byte + 1 touched so far */
    uint64_t macs;
};

static int need_body(struct vctx *v, uint64_t bytes)
{
    if (bytes > v->avail)
        return fail(v->err, KFA_KMODEL_E_TRUNCATED, v->layer, v->type, "body bytes needed", bytes,
                    ">", v->avail);
    return 0;
}

/* [addr, addr + count * elem) must lie inside the main buffer. */
static int need_main(struct vctx *v, const char *what, uint64_t addr, uint64_t count, uint64_t elem)
{
    uint64_t limit = v->m->main_mem_usage;
    if (elem && count > UINT64_MAX / elem)
        return fail(v->err, KFA_KMODEL_E_BOUNDS, v->layer, v->type, what, UINT64_MAX, ">", limit);
    uint64_t bytes = count * elem;
    if (addr > limit || bytes > limit - addr)
        return fail(v->err, KFA_KMODEL_E_BOUNDS, v->layer, v->type, what,
                    bytes > UINT64_MAX - addr ? UINT64_MAX : addr + bytes, ">", limit);
    return 0;
}

static int need_kpu_lines(struct vctx *v, const char *what, uint64_t line, uint64_t lines)
{
    if (line + lines > KFA_KPU_LINES)
        return fail(v->err, KFA_KMODEL_E_BOUNDS, v->layer, v->type, what, line + lines, ">",
                    KFA_KPU_LINES);
    if ((line + lines) * KFA_KPU_LINE_BYTES > v->kpu_end)
        v->kpu_end = (line + lines) * KFA_KPU_LINE_BYTES;
    return 0;
}

/* A parameter block at absolute file offset off, len bytes, inside this layer's body. */
static int need_param(struct vctx *v, const char *what, uint64_t off, uint64_t len)
{
    uint64_t start = v->body_off, end = v->body_off + v->avail;
    if (off < start)
        return fail(v->err, KFA_KMODEL_E_BOUNDS, v->layer, v->type, what, off, "<", start);
    if (len > end - start || off > end - len)
        return fail(v->err, KFA_KMODEL_E_BOUNDS, v->layer, v->type, what, off + len, ">", end);
    return 0;
}

static int check_conv(struct vctx *v)
{
    struct kfa_kpu_layer l;
    struct kfa_kpu_check why;
    int r;
    int eight_bit = (int)(v->m->flags & 1u);

    if ((r = need_body(v, 24)) < 0)
        return r;
    uint32_t flags = bw(v->body, 0), mo = bw(v->body, 1);
    uint32_t arg_off = bw(v->body, 2), w_off = bw(v->body, 3), bn_off = bw(v->body, 4),
             act_off = bw(v->body, 5);
    if ((r = need_param(v, "layer argument end", arg_off, KFA_KPU_ARG_BYTES)) < 0)
        return r;
    kfa_kpu_layer_decode(v->m->data + arg_off, &l);
    if (kfa_kpu_layer_check(&l, &why) < 0)
        return fail(v->err, why.bounds ? KFA_KMODEL_E_BOUNDS : KFA_KMODEL_E_UNSUPPORTED, v->layer,
                    v->type, why.what, why.value, why.rel, why.limit);
    if ((r = need_param(v, "weights end", w_off, kfa_kpu_weights_bytes(&l, eight_bit))) < 0 ||
        (r = need_param(v, "batch-norm table end", bn_off, (uint64_t)l.out.c * KFA_KPU_BN_BYTES)) <
            0 ||
        (r = need_param(v, "activation table end", act_off, KFA_KPU_ACT_BYTES)) < 0)
        return r;
    if ((flags & KLF_MAIN_MEM_OUT) &&
        (r = need_main(v, "main_mem_out end", mo, l.dma_bytes, 1)) < 0)
        return r;
    if ((r = need_kpu_lines(v, "input end line", l.in.base, kfa_kpu_map_lines(&l.in))) < 0 ||
        (r = need_kpu_lines(v, "output end line", l.out.base, kfa_kpu_map_lines(&l.out))) < 0)
        return r;
    v->macs +=
        (uint64_t)l.in.h * l.in.w * l.out.c * l.ksize * l.ksize * (l.depthwise ? 1u : l.in.c);
    return 0;
}

static int check_pool_shapes(struct vctx *v, uint64_t elem)
{
    int r;
    const uint8_t *b = v->body;
    uint64_t iw = bw(b, 3), ih = bw(b, 4), ic = bw(b, 5), ow = bw(b, 6), oh = bw(b, 7),
             oc = bw(b, 8);
    if (oc > ic)
        return fail(v->err, KFA_KMODEL_E_UNSUPPORTED, v->layer, v->type, "out channels", oc, ">",
                    ic);
    for (unsigned k = 9; k <= 14; k++)
        if (bw(b, k) > POOL_PARAM_MAX)
            return fail(v->err, KFA_KMODEL_E_UNSUPPORTED, v->layer, v->type,
                        "kernel/stride/padding", bw(b, k), ">", POOL_PARAM_MAX);
    if ((r = need_main(v, "input end", bw(b, 1), iw * ih, ic * elem)) < 0 ||
        (r = need_main(v, "output end", bw(b, 2), ow * oh, oc * elem)) < 0)
        return r;
    return 0;
}

/* Validate one layer body by type. */
static int check_layer(struct vctx *v)
{
    const uint8_t *b = v->body;
    int r;

    switch (v->type) {
    case KL_ADD:
        if ((r = need_body(v, 20)) < 0 ||
            (r = need_main(v, "in_a end", bw(b, 1), bw(b, 4), 4)) < 0 ||
            (r = need_main(v, "in_b end", bw(b, 2), bw(b, 4), 4)) < 0 ||
            (r = need_main(v, "out end", bw(b, 3), bw(b, 4), 4)) < 0)
            return r;
        return 0;
    case KL_QUANTIZED_ADD:
        if ((r = need_body(v, 56)) < 0 ||
            (r = need_main(v, "in_a end", bw(b, 1), bw(b, 4), 1)) < 0 ||
            (r = need_main(v, "in_b end", bw(b, 2), bw(b, 4), 1)) < 0 ||
            (r = need_main(v, "out end", bw(b, 3), bw(b, 4), 1)) < 0)
            return r;
        return 0;
    case KL_GLOBAL_MAX_POOL2D:
    case KL_GLOBAL_AVERAGE_POOL2D:
    case KL_QUANTIZED_GLOBAL_MAX_POOL2D: {
        uint64_t e = v->type == KL_QUANTIZED_GLOBAL_MAX_POOL2D ? 1 : 4;
        if ((r = need_body(v, 20)) < 0 ||
            (r = need_main(v, "input end", bw(b, 1), (uint64_t)bw(b, 3) * bw(b, 4), e)) < 0 ||
            (r = need_main(v, "output end", bw(b, 2), bw(b, 4), e)) < 0)
            return r;
        return 0;
    }
    case KL_QUANTIZED_MAX_POOL2D:
        if ((r = need_body(v, 60)) < 0)
            return r;
        return check_pool_shapes(v, 1);
    case KL_AVERAGE_POOL2D:
        if ((r = need_body(v, 64)) < 0)
            return r;
        return check_pool_shapes(v, 4);
    case KL_QUANTIZE:
    case KL_DEQUANTIZE: {
        uint64_t ei = v->type == KL_QUANTIZE ? 4 : 1, eo = 5 - ei;
        if ((r = need_body(v, 24)) < 0 ||
            (r = need_main(v, "input end", bw(b, 1), bw(b, 3), ei)) < 0 ||
            (r = need_main(v, "output end", bw(b, 2), bw(b, 3), eo)) < 0)
            return r;
        return 0;
    }
    case KL_CHANNELWISE_DEQUANTIZE: {
        uint64_t c, n;
        if ((r = need_body(v, 20)) < 0)
            return r;
        c = bw(b, 3);
        n = bw(b, 4);
        if ((r = need_body(v, 20 + 8 * c)) < 0 ||
            (r = need_main(v, "input end", bw(b, 1), c * n, 1)) < 0 ||
            (r = need_main(v, "output end", bw(b, 2), c * n, 4)) < 0)
            return r;
        return 0;
    }
    case KL_REQUANTIZE:
        if ((r = need_body(v, 16 + 256)) < 0 ||
            (r = need_main(v, "input end", bw(b, 1), bw(b, 3), 1)) < 0 ||
            (r = need_main(v, "output end", bw(b, 2), bw(b, 3), 1)) < 0)
            return r;
        return 0;
    case KL_L2_NORMALIZATION:
    case KL_SOFTMAX:
    case KL_LOGISTIC:
        if ((r = need_body(v, 16)) < 0 ||
            (r = need_main(v, "input end", bw(b, 1), bw(b, 3), 4)) < 0 ||
            (r = need_main(v, "output end", bw(b, 2), bw(b, 3), 4)) < 0)
            return r;
        return 0;
    case KL_CONCAT:
    case KL_QUANTIZED_CONCAT: {
        uint64_t n, total = 0;
        if ((r = need_body(v, 12)) < 0)
            return r;
        n = bw(b, 2);
        if ((r = need_body(v, 12 + 8 * n)) < 0)
            return r;
        for (uint64_t i = 0; i < n; i++) {
            uint32_t start = bw(b, 3 + 2 * (unsigned)i), size = bw(b, 4 + 2 * (unsigned)i);
            if ((r = need_main(v, "input end", start, size, 1)) < 0)
                return r;
            total += size;
        }
        return need_main(v, "output end", bw(b, 1), total, 1);
    }
    case KL_FULLY_CONNECTED: {
        uint64_t ic, oc;
        if ((r = need_body(v, 24)) < 0)
            return r;
        ic = bw(b, 3);
        oc = bw(b, 4);
        if (bw(b, 5) > ACT_RELU6)
            return fail(v->err, KFA_KMODEL_E_UNSUPPORTED, v->layer, v->type, "act", bw(b, 5), ">",
                        ACT_RELU6);
        /* ic * oc + oc < 2^64 for 32-bit ic and oc */
        if (ic * oc + oc > (v->avail - 24) / 4)
            return fail(v->err, KFA_KMODEL_E_TRUNCATED, v->layer, v->type, "parameter floats",
                        ic * oc + oc, ">", (v->avail - 24) / 4);
        if ((r = need_main(v, "input end", bw(b, 1), ic, 4)) < 0 ||
            (r = need_main(v, "output end", bw(b, 2), oc, 4)) < 0)
            return r;
        return 0;
    }
    case KL_TENSORFLOW_FLATTEN: {
        if ((r = need_body(v, 24)) < 0)
            return r;
        uint64_t n = (uint64_t)bw(b, 3) * bw(b, 4);
        if ((r = need_main(v, "input end", bw(b, 1), n, (uint64_t)bw(b, 5) * 4)) < 0 ||
            (r = need_main(v, "output end", bw(b, 2), n, (uint64_t)bw(b, 5) * 4)) < 0)
            return r;
        return 0;
    }
    case KL_RESIZE_NEAREST_NEIGHBOR:
    case KL_QUANTIZED_RESIZE_NEAREST_NEIGHBOR: {
        uint64_t e = v->type == KL_RESIZE_NEAREST_NEIGHBOR ? 4 : 1;
        if ((r = need_body(v, 36)) < 0)
            return r;
        uint64_t iw = bw(b, 3), ih = bw(b, 4), c = bw(b, 5), ow = bw(b, 6), oh = bw(b, 7);
        if ((iw == 0 || ih == 0) && ow && oh && c)
            return fail(v->err, KFA_KMODEL_E_UNSUPPORTED, v->layer, v->type, "input size", iw * ih,
                        "<", 1);
        if ((r = need_main(v, "input end", bw(b, 1), iw * ih, c * e)) < 0 ||
            (r = need_main(v, "output end", bw(b, 2), ow * oh, c * e)) < 0)
            return r;
        return 0;
    }
    case KL_K210_CONV:
        return check_conv(v);
    case KL_K210_ADD_PADDING: {
        if ((r = need_body(v, 16)) < 0)
            return r;
        uint64_t c = bw(b, 3);
        if ((r = need_main(v, "input end", bw(b, 1), c, 1)) < 0 ||
            (r = need_kpu_lines(v, "output end line", bw(b, 2),
                                (c + PADDING_GROUP - 1) / PADDING_GROUP * PADDING_PLANE_H)) < 0)
            return r;
        return 0;
    }
    case KL_K210_REMOVE_PADDING: {
        if ((r = need_body(v, 16)) < 0)
            return r;
        uint64_t c = bw(b, 3);
        if ((r = need_main(v, "input end", bw(b, 1), c ? (c - 1) * REMOVE_PADDING_STRIDE + 1 : 0,
                           1)) < 0 ||
            (r = need_main(v, "output end", bw(b, 2), c, 1)) < 0)
            return r;
        return 0;
    }
    case KL_K210_UPLOAD: {
        if ((r = need_body(v, 24)) < 0)
            return r;
        uint32_t w = bw(b, 3), h = bw(b, 4), c = bw(b, 5);
        if (w > 1024u || h > 1024u || c > 1024u)
            return fail(v->err, KFA_KMODEL_E_UNSUPPORTED, v->layer, v->type, "upload dimension",
                        w > h ? (w > c ? w : c) : (h > c ? h : c), ">", 1024);
        if (bw(b, 2) >= KFA_KPU_LINES)
            return fail(v->err, KFA_KMODEL_E_BOUNDS, v->layer, v->type, "output line", bw(b, 2),
                        ">", KFA_KPU_LINES - 1u);
        struct kfa_kpu_map m = upload_map(bw(b, 2), w, h, c);
        if ((r = need_main(v, "input end", bw(b, 1), (uint64_t)w * h, c)) < 0 ||
            (r = need_kpu_lines(v, "output end line", m.base, kfa_kpu_map_lines(&m))) < 0)
            return r;
        return 0;
    }
    default:
        if (v->err) {
            struct text t = err_begin(v->err, KFA_KMODEL_E_UNSUPPORTED, v->layer, v->type);
            tx_str(&t, "type id ");
            tx_u64(&t, v->type);
            tx_str(&t, " is not run by the kmodel v3 runtime");
        }
        return KFA_KMODEL_E_UNSUPPORTED;
    }
}

int kfa_kmodel_load(struct kfa_kmodel *m, const uint8_t *data, size_t size,
                    struct kfa_kmodel_error *err)
{
    struct kfa_kmodel_error dummy;
    struct kfa_kmodel mm;
    uint32_t version;
    int r;

    if (!err)
        err = &dummy;
    memset(&mm, 0, sizeof mm);
    if (!data || size < 4)
        return fail(err, KFA_KMODEL_E_TRUNCATED, -1, 0, "file bytes", size, "<", 4);
    version = kfa_ld_u32le(data);
    if (version == KMODEL_KMDL_MAGIC) {
        uint32_t v = size >= 8 ? kfa_ld_u32le(data + 4) : 0;
        if (v == 4)
            return fail_msg(err, KFA_KMODEL_E_FORMAT, -1, 0,
                            "kmodel v4 ('KMDL', nncase 0.2) is not supported, only v3");
        if (v == 5)
            return fail_msg(err, KFA_KMODEL_E_FORMAT, -1, 0,
                            "kmodel v5 ('KMDL', nncase 1.x) is not supported, only v3");
        return fail(err, KFA_KMODEL_E_FORMAT, -1, 0, "'KMDL' kmodel version", v, "!=", 3);
    }
    if (version == KMODEL_V3_SWAPPED)
        return fail_msg(err, KFA_KMODEL_E_FORMAT, -1, 0,
                        "byte-swapped kmodel v3 (MaixPy load_flash format); use the "
                        "little-endian file");
    if (version == 1u)
        return fail_msg(err, KFA_KMODEL_E_FORMAT, -1, 0,
                        "pre-nncase model-compiler format (version 1) is not supported");
    if (version != KMODEL_V3)
        return fail(err, KFA_KMODEL_E_FORMAT, -1, 0, "unknown format: version", version,
                    "!=", KMODEL_V3);
    if (size < KMODEL_HEADER_BYTES)
        return fail(err, KFA_KMODEL_E_TRUNCATED, -1, 0, "file bytes", size, "<",
                    KMODEL_HEADER_BYTES);

    mm.data = data;
    mm.size = size;
    mm.flags = kfa_ld_u32le(data + 4);
    uint32_t arch = kfa_ld_u32le(data + 8);
    mm.layer_count = kfa_ld_u32le(data + 12);
    mm.main_mem_usage = kfa_ld_u32le(data + 20);
    mm.output_count = kfa_ld_u32le(data + 24);
    if (arch != 0)
        return fail(err, KFA_KMODEL_E_FORMAT, -1, 0, "arch", arch, "!=", 0);
    if (mm.layer_count == 0 || mm.layer_count > KFA_KMODEL_MAX_LAYERS)
        return fail(err, KFA_KMODEL_E_UNSUPPORTED, -1, 0, "layers_length", mm.layer_count,
                    mm.layer_count ? ">" : "<", mm.layer_count ? KFA_KMODEL_MAX_LAYERS : 1);
    if (mm.output_count == 0 || mm.output_count > KFA_KMODEL_MAX_OUTPUTS)
        return fail(err, KFA_KMODEL_E_UNSUPPORTED, -1, 0, "output_count", mm.output_count,
                    mm.output_count ? ">" : "<", mm.output_count ? KFA_KMODEL_MAX_OUTPUTS : 1);
    mm.layers_offset = KMODEL_HEADER_BYTES + (size_t)mm.output_count * KMODEL_PAIR_BYTES;
    mm.bodies_offset = mm.layers_offset + (size_t)mm.layer_count * KMODEL_PAIR_BYTES;
    if (size < mm.layers_offset)
        return fail(err, KFA_KMODEL_E_TRUNCATED, -1, 0, "output table end", mm.layers_offset, ">",
                    size);
    if (size < mm.bodies_offset)
        return fail(err, KFA_KMODEL_E_TRUNCATED, -1, 0, "layer table end", mm.bodies_offset, ">",
                    size);
    for (uint32_t i = 0; i < mm.output_count; i++) {
        uint64_t a = kfa_ld_u32le(data + KMODEL_HEADER_BYTES + 8u * i);
        uint64_t n = kfa_ld_u32le(data + KMODEL_HEADER_BYTES + 8u * i + 4u);
        if (a + n > mm.main_mem_usage)
            return fail(err, KFA_KMODEL_E_BOUNDS, -1, 0, "output end", a + n, "> main_mem_usage",
                        mm.main_mem_usage);
    }

    struct vctx v = {&mm, err, 0, 0, NULL, 0, 0, 0, 0};
    uint64_t off = mm.bodies_offset;
    for (uint32_t i = 0; i < mm.layer_count; i++) {
        uint32_t type = kfa_ld_u32le(data + mm.layers_offset + 8u * i);
        uint64_t bsize = kfa_ld_u32le(data + mm.layers_offset + 8u * i + 4u);
        uint64_t slack = (i + 1 == mm.layer_count) ? KMODEL_LAST_BODY_SLACK : 0;
        v.layer = (int32_t)i;
        v.type = type;
        if (off + bsize > size + slack)
            return fail(err, KFA_KMODEL_E_TRUNCATED, v.layer, type, "body end", off + bsize, ">",
                        size + slack);
        v.body = data + off;
        v.body_off = (size_t)off;
        v.avail = (size_t)(off + bsize > size ? size - off : bsize);
        if ((r = check_layer(&v)) < 0)
            return r;
        if (i == 0) {
            if (type == KL_K210_CONV) {
                struct kfa_kpu_layer l;
                kfa_kpu_layer_decode(data + bw(v.body, 2), &l);
                mm.input_kind = KFA_INPUT_U8_CHW;
                mm.input_c = l.in.c;
                mm.input_h = l.in.h;
                mm.input_w = l.in.w;
                mm.input_bytes = (size_t)l.in.c * l.in.h * l.in.w;
            } else if (type == KL_FULLY_CONNECTED) {
                mm.input_kind = KFA_INPUT_F32;
                mm.input_c = bw(v.body, 3);
                mm.input_h = mm.input_w = 1;
                mm.input_bytes = (size_t)mm.input_c * 4u;
            } else {
                return fail_msg(err, KFA_KMODEL_E_UNSUPPORTED, 0, type,
                                "the first layer must be K210_CONV or FULLY_CONNECTED");
            }
        }
        off += bsize;
    }
    mm.kpu_ram_peak = (uint32_t)v.kpu_end;
    mm.total_macs = v.macs;
    mm.main_size = mm.main_mem_usage;
    *m = mm;
    return 0;
}

size_t kfa_kmodel_main_size(const struct kfa_kmodel *m)
{
    return m->main_size;
}

int kfa_kmodel_layer_info(const struct kfa_kmodel *m, uint32_t i,
                          struct kfa_kmodel_layer_info *info)
{
    size_t off = m->bodies_offset;
    if (i >= m->layer_count)
        return KFA_KMODEL_E_BOUNDS;
    for (uint32_t k = 0; k < i; k++)
        off += kfa_ld_u32le(m->data + m->layers_offset + 8u * k + 4u);
    memset(info, 0, sizeof *info);
    info->index = i;
    info->type = kfa_ld_u32le(m->data + m->layers_offset + 8u * i);
    info->name = kfa_kmodel_layer_name(info->type);
    info->body_offset = off;
    info->body_size = kfa_ld_u32le(m->data + m->layers_offset + 8u * i + 4u);
    /* Every body the loader accepted has at least its 4-byte flags word. */
    if (off + 4u <= m->size)
        info->flags = kfa_ld_u32le(m->data + off);
    if (info->type == KL_K210_CONV) {
        struct kfa_kpu_layer l;
        kfa_kpu_layer_decode(m->data + kfa_ld_u32le(m->data + off + 8u), &l);
        info->in_c = l.in.c;
        info->in_h = l.in.h;
        info->in_w = l.in.w;
        info->out_c = l.out.c;
        info->out_h = l.out.h;
        info->out_w = l.out.w;
        info->kernel = l.ksize;
        info->depthwise = l.depthwise;
        info->pool_type = l.pool_type;
        info->kpu_src_line = l.in.base;
        info->kpu_dst_line = l.out.base;
        info->main_out = kfa_ld_u32le(m->data + off + 4u);
        info->macs =
            (uint64_t)l.in.h * l.in.w * l.out.c * l.ksize * l.ksize * (l.depthwise ? 1u : l.in.c);
    }
    return 0;
}

/* ---- CPU layers (kmodel-facts.md §2.2 and §5; SDK kpu.c:745-1362) ------------------ */

/* SDK kpu_carry_shift (kpu.c:613-631): the SDK's rounding right shift. */
static int64_t sdk_carry_shift(int64_t v, uint32_t shift)
{
    if (shift == 0)
        return v;
    if (shift > 63)
        shift = 63;
    v >>= shift - 1;
    if (v & 1)
        return v < 0 ? (v >> 1) - 1 : (v >> 1) + 1;
    return v >> 1;
}

/* Wrapping int64 multiply: defined behaviour on hostile parameters. */
static int64_t mulw(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a * (uint64_t)b);
}

static int64_t shr64(int64_t v, int64_t s)
{
    if (s <= 0)
        return v;
    return v >> (s > 63 ? 63 : s);
}

static void run_quantized_add(const uint8_t *b, uint8_t *mb)
{
    uint32_t count = bw(b, 4);
    const uint8_t *a_ = mb + bw(b, 1), *b_ = mb + bw(b, 2);
    uint8_t *out = mb + bw(b, 3);
    int64_t oa = (int32_t)bw(b, 5), ma = (int32_t)bw(b, 6), sa = (int32_t)bw(b, 7);
    int64_t ob = (int32_t)bw(b, 8), mb_ = (int32_t)bw(b, 9), sb = (int32_t)bw(b, 10);
    int64_t oo = (int32_t)bw(b, 11), mo = (int32_t)bw(b, 12), so = (int32_t)bw(b, 13);
    for (uint32_t i = 0; i < count; i++) {
        int64_t x = mulw(a_[i] + oa, ma), y = mulw(b_[i] + ob, mb_), v;
        if (sa == sb)
            v = shr64((int64_t)((uint64_t)x + (uint64_t)y), sa);
        else
            v = (int64_t)((uint64_t)shr64(x, sa) + (uint64_t)shr64(y, sb));
        v = (int64_t)((uint64_t)sdk_carry_shift(mulw(v, mo), so < 0 ? 0 : (uint32_t)so) +
                      (uint64_t)oo);
        out[i] = (uint8_t)(v < 0 ? 0 : v > QUANT_MAX ? QUANT_MAX : v);
    }
}

static float float_act(float x, uint32_t act)
{
    if (act == ACT_RELU)
        return x > 0.f ? x : 0.f;
    if (act == ACT_RELU6)
        return x > 0.f ? (x < 6.f ? x : 6.f) : 0.f;
    return x;
}

static void run_fully_connected(const uint8_t *b, uint8_t *mb)
{
    uint32_t ic = bw(b, 3), oc = bw(b, 4), act = bw(b, 5);
    const uint8_t *in = mb + bw(b, 1);
    uint8_t *out = mb + bw(b, 2);
    const uint8_t *w = b + 24, *bias = w + 4u * (size_t)ic * oc;
    /* The SDK's 8-way unrolled loop adds in the same order as this one. */
    for (uint32_t o = 0; o < oc; o++) {
        float sum = 0.f;
        const uint8_t *wr = w + 4u * (size_t)o * ic;
        for (uint32_t i = 0; i < ic; i++)
            sum += ld_f32(in + 4u * i) * ld_f32(wr + 4u * i);
        st_f32(out + 4u * o, sum + ld_f32(bias + 4u * o));
    }
    for (uint32_t o = 0; o < oc; o++)
        st_f32(out + 4u * o, float_act(ld_f32(out + 4u * o), act));
}

/* QUANTIZED_MAX_POOL2D (elem 1) and AVERAGE_POOL2D (elem 4) share the window walk. */
static void run_pool2d(const uint8_t *b, uint8_t *mb, int average)
{
    const uint8_t *in = mb + bw(b, 1);
    uint8_t *out = mb + bw(b, 2);
    int64_t iw = bw(b, 3), ih = bw(b, 4), ow = bw(b, 6), oh = bw(b, 7), oc = bw(b, 8);
    int64_t kw = bw(b, 9), kh = bw(b, 10), sw = bw(b, 11), sh = bw(b, 12), pw = bw(b, 13),
            ph = bw(b, 14);
    size_t o = 0;
    for (int64_t c = 0; c < oc; c++)
        for (int64_t y = 0; y < oh; y++)
            for (int64_t x = 0; x < ow; x++, o++) {
                int64_t x0 = x * sw - pw, y0 = y * sh - ph;
                int64_t kx0 = x0 < 0 ? -x0 : 0, ky0 = y0 < 0 ? -y0 : 0;
                int64_t kx1 = kw < iw - x0 ? kw : iw - x0, ky1 = kh < ih - y0 ? kh : ih - y0;
                uint8_t mx = 0;
                float sum = 0.f, n = 0.f;
                for (int64_t ky = ky0; ky < ky1; ky++)
                    for (int64_t kx = kx0; kx < kx1; kx++) {
                        size_t idx = (size_t)((c * ih + y0 + ky) * iw + x0 + kx);
                        if (average) {
                            sum += ld_f32(in + 4u * idx);
                            n += 1.f;
                        } else if (in[idx] > mx) {
                            mx = in[idx];
                        }
                    }
                if (average)
                    st_f32(out + 4u * o, sum / n);
                else
                    out[o] = mx;
            }
}

static void run_resize(const uint8_t *b, uint8_t *mb, size_t e)
{
    const uint8_t *in = mb + bw(b, 1);
    uint8_t *out = mb + bw(b, 2);
    uint32_t iw = bw(b, 3), ih = bw(b, 4), c = bw(b, 5), ow = bw(b, 6), oh = bw(b, 7);
    if (!ow || !oh)
        return;
    float hs = (float)ih / (float)oh, ws = (float)iw / (float)ow;
    for (uint32_t ch = 0; ch < c; ch++)
        for (uint32_t y = 0; y < oh; y++) {
            float fy = floorf((float)y * hs);
            uint32_t sy = fy < (float)(ih - 1) ? (uint32_t)fy : ih - 1;
            for (uint32_t x = 0; x < ow; x++) {
                float fx = floorf((float)x * ws);
                uint32_t sx = fx < (float)(iw - 1) ? (uint32_t)fx : iw - 1;
                memcpy(out, in + (((size_t)ch * ih + sy) * iw + sx) * e, e);
                out += e;
            }
        }
}

static int run_conv(const struct kfa_kmodel *m, const uint8_t *b, size_t body_off, size_t avail,
                    uint8_t *mb, uint8_t *ram, enum kfa_rounding rounding)
{
    struct kfa_kpu_layer l;
    struct kfa_kpu_conv c;
    size_t body_end = body_off + avail;
    kfa_kpu_layer_decode(m->data + bw(b, 2), &l);
    c.arg = m->data + bw(b, 2);
    c.weights = m->data + bw(b, 3);
    c.weights_len = body_end - bw(b, 3);
    c.bn = m->data + bw(b, 4);
    c.act = m->data + bw(b, 5);
    c.main_out = (bw(b, 0) & KLF_MAIN_MEM_OUT) ? mb + bw(b, 1) : NULL;
    c.main_out_len = c.main_out ? l.dma_bytes : 0;
    c.eight_bit = (int)(m->flags & 1u);
    return kfa_hal_kpu_conv(&c, ram, rounding);
}

/* Execute one validated layer. */
static int run_layer(const struct kfa_kmodel *m, uint32_t type, const uint8_t *b, size_t body_off,
                     size_t avail, uint8_t *mb, uint8_t *ram, enum kfa_rounding rounding)
{
    switch (type) {
    case KL_ADD: {
        const uint8_t *x = mb + bw(b, 1), *y = mb + bw(b, 2);
        uint8_t *o = mb + bw(b, 3);
        for (uint32_t i = 0, n = bw(b, 4); i < n; i++)
            st_f32(o + 4u * i, ld_f32(x + 4u * i) + ld_f32(y + 4u * i));
        return 0;
    }
    case KL_QUANTIZED_ADD:
        run_quantized_add(b, mb);
        return 0;
    case KL_GLOBAL_MAX_POOL2D:
    case KL_GLOBAL_AVERAGE_POOL2D: {
        const uint8_t *in = mb + bw(b, 1);
        uint8_t *o = mb + bw(b, 2);
        uint32_t k = bw(b, 3), c = bw(b, 4);
        for (uint32_t ch = 0; ch < c; ch++) {
            float acc = type == KL_GLOBAL_MAX_POOL2D ? -INFINITY : 0.f;
            for (uint32_t i = 0; i < k; i++, in += 4) {
                float f = ld_f32(in);
                if (type == KL_GLOBAL_MAX_POOL2D)
                    acc = f > acc ? f : acc;
                else
                    acc += f;
            }
            st_f32(o + 4u * ch, type == KL_GLOBAL_MAX_POOL2D ? acc : acc / (float)k);
        }
        return 0;
    }
    case KL_QUANTIZED_GLOBAL_MAX_POOL2D: {
        const uint8_t *in = mb + bw(b, 1);
        uint8_t *o = mb + bw(b, 2);
        uint32_t k = bw(b, 3), c = bw(b, 4);
        for (uint32_t ch = 0; ch < c; ch++) {
            uint8_t mx = 0;
            for (uint32_t i = 0; i < k; i++, in++)
                mx = *in > mx ? *in : mx;
            o[ch] = mx;
        }
        return 0;
    }
    case KL_QUANTIZED_MAX_POOL2D:
        run_pool2d(b, mb, 0);
        return 0;
    case KL_AVERAGE_POOL2D:
        run_pool2d(b, mb, 1);
        return 0;
    case KL_QUANTIZE: {
        const uint8_t *in = mb + bw(b, 1);
        uint8_t *o = mb + bw(b, 2);
        float scale = 1.f / ld_f32(b + 16), bias = ld_f32(b + 20);
        for (uint32_t i = 0, n = bw(b, 3); i < n; i++) {
            float q = roundf((ld_f32(in + 4u * i) - bias) * scale);
            /* Clamp in float first: (int)NaN or out-of-range is undefined. */
            o[i] = (uint8_t)(q >= 0.f ? (q <= 255.f ? (int)q : QUANT_MAX) : 0);
        }
        return 0;
    }
    case KL_DEQUANTIZE: {
        const uint8_t *in = mb + bw(b, 1);
        uint8_t *o = mb + bw(b, 2);
        float scale = ld_f32(b + 16), bias = ld_f32(b + 20);
        for (uint32_t i = 0, n = bw(b, 3); i < n; i++) {
            float p = (float)in[i] * scale;
            st_f32(o + 4u * i, p + bias);
        }
        return 0;
    }
    case KL_CHANNELWISE_DEQUANTIZE: {
        const uint8_t *in = mb + bw(b, 1);
        uint8_t *o = mb + bw(b, 2);
        uint32_t c = bw(b, 3), n = bw(b, 4);
        for (uint32_t ch = 0; ch < c; ch++) {
            float scale = ld_f32(b + 20 + 8u * ch), bias = ld_f32(b + 24 + 8u * ch);
            for (uint32_t i = 0; i < n; i++, in++, o += 4) {
                float p = (float)*in * scale;
                st_f32(o, p + bias);
            }
        }
        return 0;
    }
    case KL_REQUANTIZE: {
        const uint8_t *in = mb + bw(b, 1);
        uint8_t *o = mb + bw(b, 2);
        for (uint32_t i = 0, n = bw(b, 3); i < n; i++)
            o[i] = b[16 + in[i]];
        return 0;
    }
    case KL_L2_NORMALIZATION: {
        const uint8_t *in = mb + bw(b, 1);
        uint8_t *o = mb + bw(b, 2);
        uint32_t n = bw(b, 3);
        float sum = 0.f;
        for (uint32_t i = 0; i < n; i++) {
            float f = ld_f32(in + 4u * i);
            sum += f * f;
        }
        if (sum < L2_EPSILON)
            sum = L2_EPSILON;
        sum = 1.f / sqrtf(sum);
        for (uint32_t i = 0; i < n; i++)
            st_f32(o + 4u * i, ld_f32(in + 4u * i) * sum);
        return 0;
    }
    case KL_SOFTMAX: {
        const uint8_t *in = mb + bw(b, 1);
        uint8_t *o = mb + bw(b, 2);
        uint32_t n = bw(b, 3);
        /* The SDK starts the max at FLT_MIN, not -inf (kmodel-facts.md §2.2). */
        float mx = FLT_MIN, sum = 0.f;
        for (uint32_t i = 0; i < n; i++)
            mx = fmaxf(mx, ld_f32(in + 4u * i));
        for (uint32_t i = 0; i < n; i++) {
            float e = expf(ld_f32(in + 4u * i) - mx);
            sum += e;
            st_f32(o + 4u * i, e);
        }
        for (uint32_t i = 0; i < n; i++)
            st_f32(o + 4u * i, ld_f32(o + 4u * i) / sum);
        return 0;
    }
    case KL_LOGISTIC: {
        const uint8_t *in = mb + bw(b, 1);
        uint8_t *o = mb + bw(b, 2);
        for (uint32_t i = 0, n = bw(b, 3); i < n; i++)
            st_f32(o + 4u * i, 1.f / (1.f + expf(-ld_f32(in + 4u * i))));
        return 0;
    }
    case KL_CONCAT:
    case KL_QUANTIZED_CONCAT: {
        uint8_t *o = mb + bw(b, 1);
        for (uint32_t i = 0, n = bw(b, 2); i < n; i++) {
            uint32_t start = bw(b, 3 + 2 * i), size = bw(b, 4 + 2 * i);
            memmove(o, mb + start, size);
            o += size;
        }
        return 0;
    }
    case KL_FULLY_CONNECTED:
        run_fully_connected(b, mb);
        return 0;
    case KL_TENSORFLOW_FLATTEN: {
        const uint8_t *in = mb + bw(b, 1);
        uint8_t *o = mb + bw(b, 2);
        uint32_t w = bw(b, 3), h = bw(b, 4), c = bw(b, 5);
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++)
                for (uint32_t ch = 0; ch < c; ch++, o += 4)
                    memmove(o, in + 4u * (((size_t)ch * h + y) * w + x), 4);
        return 0;
    }
    case KL_RESIZE_NEAREST_NEIGHBOR:
        run_resize(b, mb, 4);
        return 0;
    case KL_QUANTIZED_RESIZE_NEAREST_NEIGHBOR:
        run_resize(b, mb, 1);
        return 0;
    case KL_K210_CONV:
        return run_conv(m, b, body_off, avail, mb, ram, rounding);
    case KL_K210_ADD_PADDING: {
        const uint8_t *in = mb + bw(b, 1);
        size_t base = (size_t)bw(b, 2) * KFA_KPU_LINE_BYTES;
        for (uint32_t c = 0, n = bw(b, 3); c < n; c++)
            ram[base + (c / PADDING_GROUP) * PADDING_PLANE_H * KFA_KPU_LINE_BYTES +
                (c % PADDING_GROUP) * PADDING_ROW_PITCH] = in[c];
        return 0;
    }
    case KL_K210_REMOVE_PADDING: {
        const uint8_t *in = mb + bw(b, 1);
        uint8_t *o = mb + bw(b, 2);
        for (uint32_t c = 0, n = bw(b, 3); c < n; c++)
            o[c] = in[(size_t)c * REMOVE_PADDING_STRIDE];
        return 0;
    }
    case KL_K210_UPLOAD: {
        struct kfa_kpu_map map = upload_map(bw(b, 2), bw(b, 3), bw(b, 4), bw(b, 5));
        upload(ram, &map, mb + bw(b, 1));
        return 0;
    }
    default:
        return KFA_KMODEL_E_UNSUPPORTED; /* the loader refused it already */
    }
}

int kfa_kmodel_run(const struct kfa_kmodel *m, const void *input, size_t input_len,
                   uint8_t *main_buf, size_t main_len, uint8_t *kpu_ram, enum kfa_rounding rounding,
                   struct kfa_kmodel_error *err)
{
    if (input_len != m->input_bytes || (!input && input_len))
        return fail(err, KFA_KMODEL_E_INPUT, -1, 0, "input bytes", input_len, "!=", m->input_bytes);
    if (main_len < m->main_size || (!main_buf && m->main_size))
        return fail(err, KFA_KMODEL_E_BUFFER, -1, 0, "main buffer bytes", main_len, "<",
                    m->main_size);
    if (!kpu_ram)
        return fail_msg(err, KFA_KMODEL_E_BUFFER, -1, 0, "no KPU RAM");
    if (m->main_size)
        memset(main_buf, 0, m->main_size);

    size_t off = m->bodies_offset;
    for (uint32_t i = 0; i < m->layer_count; i++) {
        uint32_t type = kfa_ld_u32le(m->data + m->layers_offset + 8u * i);
        uint32_t bsize = kfa_ld_u32le(m->data + m->layers_offset + 8u * i + 4u);
        const uint8_t *b = m->data + off;
        size_t avail = off + bsize > m->size ? m->size - off : bsize;
        if (i == 0) {
            if (m->input_kind == KFA_INPUT_U8_CHW) {
                struct kfa_kpu_layer l;
                kfa_kpu_layer_decode(m->data + bw(b, 2), &l);
                upload(kpu_ram, &l.in, (const uint8_t *)input);
            } else if (input_len) {
                memcpy(main_buf + bw(b, 1), input, input_len);
            }
        }
        int r = run_layer(m, type, b, off, avail, main_buf, kpu_ram, rounding);
        if (r < 0)
            return fail_msg(err, KFA_KMODEL_E_UNSUPPORTED, (int32_t)i, type,
                            "the KPU refused the layer argument");
        off += bsize;
    }
    return 0;
}

int kfa_kmodel_output(const struct kfa_kmodel *m, const uint8_t *main_buf, uint32_t i,
                      const void **out, size_t *out_len)
{
    if (i >= m->output_count)
        return KFA_KMODEL_E_BOUNDS;
    uint32_t a = kfa_ld_u32le(m->data + KMODEL_HEADER_BYTES + 8u * i);
    *out = main_buf + a;
    *out_len = kfa_ld_u32le(m->data + KMODEL_HEADER_BYTES + 8u * i + 4u);
    return 0;
}
