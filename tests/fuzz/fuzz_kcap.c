/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the .kcap capture reader (daemon/link/kcap.h), which kpud --replay and the
 * replay corpus feed with files a user hands it. The input is a capture file. Properties:
 * no read outside the buffer (the input is copied to an exact-size block); every record
 * lies inside the file; header lookups stay inside the header; and whatever the reader
 * accepts, written back with the writer and read again, gives the same records.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_RECORDS 4096u /* the round trip compares at most this many records */

struct rec_copy {
    enum kcap_dir dir;
    uint64_t t_us;
    size_t off; /* into the input */
    size_t len;
};

static struct rec_copy recs[FUZZ_MAX_RECORDS];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"board", "agent_version", "date", "transport",
                                       "path",  "notes",         "",     "x"};
    struct kcap_reader r, r2;
    struct kcap_record rec;
    char err[160], val[64];
    size_t n = 0, hdr_len;
    char *hdr = NULL, *out = NULL;
    size_t out_len = 0;
    FILE *f;
    int rc;

    if (kcap_reader_open(&r, data, size, err, sizeof(err)) < 0) {
        if (!memchr(err, 0, sizeof(err)) || !err[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    if (r.header < (const char *)data || r.header + r.header_len > (const char *)data + size)
        abort();
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        if (kcap_header_get(&r, keys[k], val, sizeof(val)) && strlen(val) >= sizeof(val))
            abort();
    while ((rc = kcap_reader_next(&r, &rec)) == 1) {
        if (rec.data < data || rec.data + rec.len > data + size || rec.dir > KCAP_MARKER)
            abort();
        if (n < FUZZ_MAX_RECORDS)
            recs[n] = (struct rec_copy){rec.dir, rec.t_us, (size_t)(rec.data - data), rec.len};
        n++;
    }
    if (rc != 0 && rc != -EINVAL)
        abort();
    if (r.pos != r.size)
        abort(); /* the reader stops at the end, whatever it found there */
    if (n > FUZZ_MAX_RECORDS)
        return 0;

    /* Round trip through the writer. */
    f = open_memstream(&out, &out_len);
    if (!f)
        return 0;
    hdr_len = r.header_len;
    hdr = malloc(hdr_len + 1);
    if (!hdr) {
        fclose(f);
        free(out);
        return 0;
    }
    memcpy(hdr, r.header, hdr_len);
    hdr[hdr_len] = 0;
    /* The writer takes a C string: a header with a NUL inside is cut there. */
    if (kcap_write_header(f, hdr) < 0)
        abort();
    for (size_t i = 0; i < n; i++)
        if (kcap_write_record(f, recs[i].dir, recs[i].t_us, data + recs[i].off, recs[i].len) < 0)
            abort();
    fclose(f);
    if (kcap_reader_open(&r2, (const uint8_t *)out, out_len, err, sizeof(err)) < 0)
        abort();
    if (r2.header_len != strlen(hdr) || memcmp(r2.header, hdr, r2.header_len) != 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (kcap_reader_next(&r2, &rec) != 1 || rec.dir != recs[i].dir ||
            rec.t_us != recs[i].t_us || rec.len != recs[i].len ||
            memcmp(rec.data, data + recs[i].off, rec.len) != 0)
            abort();
    }
    if (kcap_reader_next(&r2, &rec) != 0 || r2.truncated)
        abort();
    free(hdr);
    free(out);
    return 0;
}
