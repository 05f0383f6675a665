/* SPDX-License-Identifier: MIT */
/* kmodel v3 writer for tests; see kmodel_writer.h. */
#include "kmodel_writer.h"

#include <stdlib.h>
#include <string.h>

#define KMW_MAX_LAYERS 64
#define KMW_MAX_OUTPUTS 16

struct kmw_layer {
    uint32_t type;
    uint8_t *body;
    size_t len;
    int is_conv;
    struct kmw_conv conv;
};

struct kmw {
    uint32_t flags, main_mem;
    uint32_t out_addr[KMW_MAX_OUTPUTS], out_size[KMW_MAX_OUTPUTS];
    unsigned n_out, n_layers;
    struct kmw_layer layers[KMW_MAX_LAYERS];
};

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p)
        abort();
    return p;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

struct kmw *kmw_new(uint32_t flags, uint32_t main_mem_usage)
{
    struct kmw *w = xmalloc(sizeof *w);
    w->flags = flags;
    w->main_mem = main_mem_usage;
    return w;
}

void kmw_output(struct kmw *w, uint32_t address, uint32_t size)
{
    w->out_addr[w->n_out] = address;
    w->out_size[w->n_out++] = size;
}

void kmw_layer(struct kmw *w, uint32_t type, const void *body, size_t len)
{
    struct kmw_layer *l = &w->layers[w->n_layers++];
    l->type = type;
    l->body = xmalloc(align_up(len, 8)); /* zeroed padding */
    memcpy(l->body, body, len);
    l->len = len;
}

void kmw_layer_words(struct kmw *w, uint32_t type, const uint32_t *words, size_t n)
{
    uint8_t *b = xmalloc(4 * n);
    for (size_t i = 0; i < n; i++)
        put32(b + 4 * i, words[i]);
    kmw_layer(w, type, b, 4 * n);
    free(b);
}

void kmw_conv_layer(struct kmw *w, const struct kmw_conv *c)
{
    struct kmw_layer *l = &w->layers[w->n_layers++];
    l->type = 10240;
    l->is_conv = 1;
    l->conv = *c;
}

uint64_t kmw_bn(int32_t mul, uint32_t shift, int32_t add)
{
    return ((uint64_t)(uint32_t)mul & 0xFFFFFFu) | ((uint64_t)(uint32_t)add << 24) |
           ((uint64_t)(shift & 15u) << 56);
}

void kmw_act_segment(uint8_t act[144], unsigned i, int64_t x_start, int32_t y_mul, uint32_t shift,
                     uint8_t bias)
{
    uint64_t s = (uint64_t)(shift & 0xFFu) | ((uint64_t)(uint16_t)y_mul << 8) |
                 (((uint64_t)x_start & 0xFFFFFFFFFull) << 24);
    put64(act + 8 * i, s);
    act[128 + i] = bias;
}

static void layout(uint32_t w, uint32_t h, uint32_t *group, uint32_t *row_lines, uint32_t *ch_lines)
{
    *group = w <= 16 ? 4 : w <= 32 ? 2 : 1;
    *row_lines = *group == 1 ? (w + 63) / 64 : 1;
    *ch_lines = *row_lines * h;
}

static uint32_t pooled(uint32_t pool, uint32_t n)
{
    if (pool == 1 || pool == 2 || pool == 5 || pool == 6)
        return n / 2;
    if (pool == 3 || pool == 4 || pool == 7)
        return n / 4;
    return n;
}

void kmw_encode_arg(const struct kmw_conv *c, uint8_t arg[96])
{
    uint64_t word[12] = {0};
    uint32_t ow = pooled(c->pool_type, c->in_w), oh = pooled(c->pool_type, c->in_h);
    uint32_t ig, irl, icl, og, orl, ocl;
    layout(c->in_w, c->in_h, &ig, &irl, &icl);
    layout(ow, oh, &og, &orl, &ocl);
    size_t kk = (size_t)c->ksize * c->ksize;
    size_t wcount = c->depthwise ? c->out_c * kk : (size_t)c->out_c * c->in_c * kk;
    word[0] = (uint64_t)(c->depthwise ? 1 : 0) << 3;
    word[1] = (uint64_t)c->src_line | (uint64_t)c->dst_line << 32;
    word[2] =
        (uint64_t)(c->in_c - 1) | (uint64_t)(c->out_c - 1) << 32 | (uint64_t)(c->out_c - 1) << 48;
    word[3] = (uint64_t)(c->in_w - 1) | (uint64_t)(c->in_h - 1) << 10 | (uint64_t)(ow - 1) << 32 |
              (uint64_t)(oh - 1) << 42;
    word[4] = (uint64_t)(c->ksize == 3 ? 1 : 0) | (uint64_t)c->pool_type << 4 | (uint64_t)1 << 10 |
              (uint64_t)15 << 16 | (uint64_t)c->pad_value << 24;
    word[5] = (uint64_t)(wcount * (c->eight_bit ? 1 : 2)) << 15;
    word[7] = (uint64_t)icl | (uint64_t)irl << 16 | (uint64_t)ig << 28;
    word[8] = (uint64_t)ocl | (uint64_t)orl << 16 | (uint64_t)og << 20;
    word[9] = (uint64_t)c->shr_w | (uint64_t)c->shr_x << 4 |
              ((uint64_t)(uint32_t)c->arg_w & 0xFFFFFFu) << 8 |
              ((uint64_t)(uint32_t)c->arg_x & 0xFFFFFFu) << 32;
    word[10] = (uint64_t)c->arg_add & 0xFFFFFFFFFFull;
    word[11] = (uint64_t)(ow * oh - 1) << 16 | (uint64_t)(ow * oh * c->out_c - 1) << 32;
    for (int i = 0; i < 12; i++)
        put64(arg + 8 * i, word[i]);
}

/* Body of a conv layer placed at file offset start: 24-byte header, then parameters. */
static uint8_t *conv_body(const struct kmw_conv *c, size_t start, size_t *len)
{
    size_t kk = (size_t)c->ksize * c->ksize;
    size_t wbytes =
        (c->depthwise ? c->out_c * kk : (size_t)c->out_c * c->in_c * kk) * (c->eight_bit ? 1 : 2);
    /* Same alignments as nncase 0.1 (kmodel-facts.md §2): arg 8, weights/BN 128, act 256 */
    size_t arg = align_up(start + 24, 8), wo = align_up(arg + 96, 128);
    size_t bo = align_up(wo + wbytes, 128), ao = align_up(bo + 8 * (size_t)c->out_c, 256);
    size_t end = align_up(ao + 144, 8);
    uint8_t *b = xmalloc(end - start);
    put32(b, c->has_main_out ? 1 : 0);
    put32(b + 4, c->main_out);
    put32(b + 8, (uint32_t)arg);
    put32(b + 12, (uint32_t)wo);
    put32(b + 16, (uint32_t)bo);
    put32(b + 20, (uint32_t)ao);
    kmw_encode_arg(c, b + (arg - start));
    memcpy(b + (wo - start), c->weights, wbytes);
    for (uint32_t o = 0; o < c->out_c; o++)
        put64(b + (bo - start) + 8 * o, c->bn[o]);
    memcpy(b + (ao - start), c->act, 144);
    *len = end - start;
    return b;
}

uint8_t *kmw_finish(struct kmw *w, size_t *size)
{
    size_t head = 28 + 8 * (size_t)w->n_out + 8 * (size_t)w->n_layers;
    size_t off = head;
    for (unsigned i = 0; i < w->n_layers; i++) {
        struct kmw_layer *l = &w->layers[i];
        if (l->is_conv)
            l->body = conv_body(&l->conv, off, &l->len);
        else
            l->len = align_up(l->len, 8);
        off += l->len;
    }
    uint8_t *f = xmalloc(off);
    put32(f, 3);
    put32(f + 4, w->flags);
    put32(f + 8, 0);
    put32(f + 12, w->n_layers);
    put32(f + 16, 0);
    put32(f + 20, w->main_mem);
    put32(f + 24, w->n_out);
    for (unsigned i = 0; i < w->n_out; i++) {
        put32(f + 28 + 8 * i, w->out_addr[i]);
        put32(f + 32 + 8 * i, w->out_size[i]);
    }
    off = head;
    for (unsigned i = 0; i < w->n_layers; i++) {
        struct kmw_layer *l = &w->layers[i];
        size_t h = 28 + 8 * (size_t)w->n_out + 8 * i;
        put32(f + h, l->type);
        put32(f + h + 4, (uint32_t)l->len);
        memcpy(f + off, l->body, l->len);
        off += l->len;
        free(l->body);
    }
    free(w);
    *size = off;
    return f;
}
