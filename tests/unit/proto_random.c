/* SPDX-License-Identifier: MIT */
/*
 * Random protobuf-c messages within nanopb bounds (see proto_random.h).
 */
#include "proto_random.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BOUNDS 128

struct bound {
    char name[128]; /* full field name, e.g. kpu.link.v1.Box.score */
    unsigned max_size;
    unsigned max_count;
};

static struct bound bounds[MAX_BOUNDS];
static int nbounds;
static uint32_t state = 1;

void proto_random_seed(uint32_t seed)
{
    state = seed ? seed : 1;
}

static uint32_t rnd(void)
{
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

int proto_random_load_options(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[256];

    if (!f)
        return -1;
    nbounds = 0;
    while (fgets(line, sizeof(line), f) && nbounds < MAX_BOUNDS) {
        char name[128];
        unsigned v;
        if (line[0] == '#')
            continue;
        if (sscanf(line, "%127s max_size:%u", name, &v) == 2) {
            snprintf(bounds[nbounds].name, sizeof(bounds[0].name), "%s", name);
            bounds[nbounds].max_size = v;
            bounds[nbounds++].max_count = 0;
        } else if (sscanf(line, "%127s max_count:%u", name, &v) == 2) {
            snprintf(bounds[nbounds].name, sizeof(bounds[0].name), "%s", name);
            bounds[nbounds].max_size = 0;
            bounds[nbounds++].max_count = v;
        }
    }
    fclose(f);
    return nbounds;
}

static const struct bound *find_bound(const ProtobufCMessageDescriptor *d,
                                      const ProtobufCFieldDescriptor *fd)
{
    char full[160];
    snprintf(full, sizeof(full), "%s.%s", d->name, fd->name);
    for (int i = 0; i < nbounds; i++)
        if (strcmp(bounds[i].name, full) == 0)
            return &bounds[i];
    return NULL;
}

/* Scalars are zero about one time in four, so "absent" proto3 fields are covered. */
static int maybe_zero(void)
{
    return (rnd() & 3u) == 0;
}

static float rnd_float(void)
{
    /* Finite values only: NaN payload bits need not survive two codecs. */
    return (float)(int32_t)rnd() / 65536.0f;
}

static int fill_scalar(const ProtobufCFieldDescriptor *fd, void *p, unsigned size_bound)
{
    int zero = maybe_zero();
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)p = zero ? 0 : (int32_t)rnd();
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)p = zero ? 0 : rnd() >> (rnd() % 32);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)p = zero ? 0 : (int64_t)(((uint64_t)rnd() << 32) | rnd());
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)p = zero ? 0 : (((uint64_t)rnd() << 32) | rnd()) >> (rnd() % 64);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)p = zero ? 0.0f : rnd_float();
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)p = zero ? 0.0 : (double)rnd_float();
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)p = rnd() & 1u;
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = fd->descriptor;
        *(int *)p = ed->values[rnd() % ed->n_values].value;
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        /* nanopb's max_size counts the terminating NUL. */
        unsigned max = size_bound ? size_bound - 1 : 40;
        unsigned n = zero ? 0 : rnd() % (max + 1);
        char *s = malloc(n + 1);
        if (!s)
            return -1;
        for (unsigned i = 0; i < n; i++)
            s[i] = (char)(' ' + rnd() % 95);
        s[n] = 0;
        *(char **)p = s;
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        unsigned max = size_bound ? size_bound : 64;
        ProtobufCBinaryData *b = p;
        b->len = zero ? 0 : rnd() % (max + 1);
        b->data = malloc(b->len ? b->len : 1);
        if (!b->data)
            return -1;
        for (size_t i = 0; i < b->len; i++)
            b->data[i] = (uint8_t)rnd();
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *m = proto_random_new(fd->descriptor);
        if (!m)
            return -1;
        *(ProtobufCMessage **)p = m;
        break;
    }
    }
    return 0;
}

static size_t elem_size(const ProtobufCFieldDescriptor *fd)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

ProtobufCMessage *proto_random_new(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = malloc(d->sizeof_message);

    if (!m)
        return NULL;
    d->message_init(m);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        const struct bound *b = find_bound(d, fd);
        void *member = (char *)m + fd->offset;
        unsigned size_bound = b ? b->max_size : 0;

        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            unsigned max = b && b->max_count ? b->max_count : 4;
            size_t n = rnd() % (max + 1);
            size_t *count = (size_t *)((char *)m + fd->quantifier_offset);
            void *arr = calloc(n ? n : 1, elem_size(fd));
            if (!arr)
                goto fail;
            *(void **)member = arr;
            *count = n;
            for (size_t k = 0; k < n; k++)
                if (fill_scalar(fd, (char *)arr + k * elem_size(fd), size_bound) < 0)
                    goto fail;
            continue;
        }
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE && (rnd() % 4) == 0)
            continue; /* leave the sub-message unset sometimes */
        if (fill_scalar(fd, member, size_bound) < 0)
            goto fail;
    }
    return m;
fail:
    protobuf_c_message_free_unpacked(m, NULL);
    return NULL;
}
