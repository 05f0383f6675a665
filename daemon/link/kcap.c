/* SPDX-License-Identifier: MIT */
/*
 * .kcap capture files: bounds-checked reader and a writer (format in kcap.h).
 */
#include "kcap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

int kcap_reader_open(struct kcap_reader *r, const uint8_t *buf, size_t size, char *err,
                     size_t errlen)
{
    uint32_t hlen;

    memset(r, 0, sizeof(*r));
    if (size < 12 || memcmp(buf, KCAP_MAGIC, 4) != 0) {
        snprintf(err, errlen, "not a kcap capture (no KCAP magic)");
        return -EINVAL;
    }
    if (buf[4] != KCAP_VERSION) {
        snprintf(err, errlen, "kcap version %u, this kpud reads version %u", buf[4], KCAP_VERSION);
        return -EINVAL;
    }
    hlen = get_u32(buf + 8);
    if (hlen > KCAP_MAX_HEADER || hlen > size - 12) {
        snprintf(err, errlen, "kcap header length %u exceeds the file or %u bytes", hlen,
                 KCAP_MAX_HEADER);
        return -EINVAL;
    }
    r->buf = buf;
    r->size = size;
    r->header = (const char *)buf + 12;
    r->header_len = hlen;
    r->pos = 12 + (size_t)hlen;
    return 0;
}

int kcap_reader_next(struct kcap_reader *r, struct kcap_record *rec)
{
    const uint8_t *p;
    size_t len;

    if (r->pos >= r->size)
        return 0;
    if (r->size - r->pos < KCAP_RECORD_HEADER) {
        r->truncated = 1;
        r->pos = r->size;
        return 0;
    }
    p = r->buf + r->pos;
    len = (size_t)p[2] | (size_t)p[3] << 8;
    if (r->size - r->pos - KCAP_RECORD_HEADER < len) {
        r->truncated = 1;
        r->pos = r->size;
        return 0;
    }
    if (p[0] > KCAP_MARKER) {
        r->pos = r->size;
        return -EINVAL;
    }
    rec->dir = (enum kcap_dir)p[0];
    rec->t_us = get_u64(p + 4);
    rec->data = p + KCAP_RECORD_HEADER;
    rec->len = len;
    r->pos += KCAP_RECORD_HEADER + len;
    return 1;
}

int kcap_header_get(const struct kcap_reader *r, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key), i = 0;

    while (i < r->header_len) {
        const char *line = r->header + i;
        const char *nl = memchr(line, '\n', r->header_len - i);
        size_t llen = nl ? (size_t)(nl - line) : r->header_len - i;

        if (llen > klen && memcmp(line, key, klen) == 0 && line[klen] == '=') {
            size_t vlen = llen - klen - 1;
            if (outlen) {
                if (vlen >= outlen)
                    vlen = outlen - 1;
                memcpy(out, line + klen + 1, vlen);
                out[vlen] = 0;
            }
            return 1;
        }
        i += llen + 1;
    }
    return 0;
}

int kcap_load_file(const char *path, uint8_t **buf, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b = NULL;
    long n;
    int err;

    if (!f)
        return -errno;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        err = -errno;
        fclose(f);
        return err ? err : -EIO;
    }
    if (n > 256L * 1024 * 1024) {
        fclose(f);
        return -EFBIG;
    }
    b = malloc(n ? (size_t)n : 1);
    if (!b) {
        fclose(f);
        return -ENOMEM;
    }
    if (fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        fclose(f);
        return -EIO;
    }
    fclose(f);
    *buf = b;
    *size = (size_t)n;
    return 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

int kcap_write_header(FILE *f, const char *header)
{
    uint8_t h[12] = {'K', 'C', 'A', 'P', KCAP_VERSION, 0, 0, 0};
    size_t hlen = header ? strlen(header) : 0;

    if (hlen > KCAP_MAX_HEADER)
        hlen = KCAP_MAX_HEADER;
    put_u32(h + 8, (uint32_t)hlen);
    if (fwrite(h, 1, sizeof(h), f) != sizeof(h) || (hlen && fwrite(header, 1, hlen, f) != hlen))
        return -EIO;
    return 0;
}

int kcap_write_record(FILE *f, enum kcap_dir dir, uint64_t t_us, const uint8_t *data, size_t len)
{
    do {
        size_t n = len > KCAP_MAX_RECORD ? KCAP_MAX_RECORD : len;
        uint8_t h[KCAP_RECORD_HEADER] = {(uint8_t)dir, 0, (uint8_t)n, (uint8_t)(n >> 8)};
        put_u32(h + 4, (uint32_t)t_us);
        put_u32(h + 8, (uint32_t)(t_us >> 32));
        if (fwrite(h, 1, sizeof(h), f) != sizeof(h) || (n && fwrite(data, 1, n, f) != n))
            return -EIO;
        data += n;
        len -= n;
    } while (len);
    return 0;
}
