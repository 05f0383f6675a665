/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpora of the daemon fuzz targets that are built from protocol data
 * rather than typed by hand (run by hand when the protocols change; the output is
 * committed under tests/fuzz/seeds/):
 *
 *   seedgen session OUTDIR CAPTURE.kcap...   fuzz_session scripts: the agent-to-host bytes
 *                                            of each capture, link markers as unplugs
 *   seedgen ipc OUTDIR                       fuzz_ipc_request inputs: ClientHello, then
 *                                            one request of each kind (and a few with
 *                                            hostile arguments)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcap.h"
#include "kipc.h"

#define SESSION_MAX_CHUNK 240u /* fuzz_session delivers op + 1 bytes, op <= 0xEF */
#define SESSION_OP_UNPLUG 0xF0u
#define IPC_CHUNK_BYTE 255u            /* fuzz_ipc_request: first byte 255 = 2041-byte writes */
#define SEED_DEVICE "a1b2c3d4e5f60718" /* TB_DEVICE_A of daemon/ipc/test_backend.h */

static int write_file(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) {
        perror(path);
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int session_seed(const char *outdir, const char *capture)
{
    struct kcap_reader r;
    struct kcap_record rec;
    uint8_t *buf, *out;
    size_t size, n = 0;
    char err[160], name[256];
    const char *base = strrchr(capture, '/');
    int rc;

    if (kcap_load_file(capture, &buf, &size) < 0 || kcap_reader_open(&r, buf, size, err, 160) < 0) {
        fprintf(stderr, "%s: not a capture\n", capture);
        return -1;
    }
    out = malloc(size * 2 + 16);
    if (!out)
        return -1;
    while ((rc = kcap_reader_next(&r, &rec)) == 1) {
        if (rec.dir == KCAP_MARKER && rec.len == 7 && !memcmp(rec.data, "link up", 7) && n)
            out[n++] = SESSION_OP_UNPLUG;
        if (rec.dir != KCAP_AGENT_TO_HOST)
            continue;
        for (size_t off = 0; off < rec.len; off += SESSION_MAX_CHUNK) {
            size_t k = rec.len - off < SESSION_MAX_CHUNK ? rec.len - off : SESSION_MAX_CHUNK;
            out[n++] = (uint8_t)(k - 1);
            memcpy(out + n, rec.data + off, k);
            n += k;
        }
    }
    snprintf(name, sizeof(name), "%s", base ? base + 1 : capture);
    rc = write_file(outdir, name, out, n);
    free(out);
    free(buf);
    return rc;
}

/* Append frame f (packed with its length prefix) to out. */
static size_t put(uint8_t *out, size_t n, Kpu__Ipc__V1__Frame *f)
{
    uint8_t *w;
    size_t l;

    if (kipc_pack(f, 0, &w, &l) < 0)
        abort();
    memcpy(out + n, w, l);
    free(w);
    return n + l;
}

static size_t hello(uint8_t *out)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__ClientHello h = KPU__IPC__V1__CLIENT_HELLO__INIT;

    out[0] = IPC_CHUNK_BYTE;
    h.protocol_major = 1;
    h.client_name = "seed";
    f.request_id = 1;
    f.body_case = KPU__IPC__V1__FRAME__BODY_CLIENT_HELLO;
    f.client_hello = &h;
    return put(out, 1, &f);
}

static int ipc_seeds(const char *outdir)
{
    const ProtobufCMessageDescriptor *fd = &kpu__ipc__v1__frame__descriptor;
    static uint8_t out[65536];
    char name[128];
    size_t n;

    /* One seed per request body, with an empty (default) message. */
    for (unsigned i = 0; i < fd->n_fields; i++) {
        const ProtobufCFieldDescriptor *fld = &fd->fields[i];
        Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
        ProtobufCMessage *m;

        if (fld->id < 20 || fld->id >= 60)
            continue;
        m = calloc(1, ((const ProtobufCMessageDescriptor *)fld->descriptor)->sizeof_message);
        protobuf_c_message_init(fld->descriptor, m);
        f.request_id = 2;
        f.body_case = (Kpu__Ipc__V1__Frame__BodyCase)fld->id;
        f.ping = (Kpu__Ipc__V1__Ping *)m; /* every body member shares the oneof's storage */
        n = put(out, hello(out), &f);
        snprintf(name, sizeof(name), "req-%s", fld->name);
        if (write_file(outdir, name, out, n) < 0)
            return -1;
        free(m);
    }
    /* Hostile arguments. */
    {
        Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
        Kpu__Ipc__V1__RecordStart rs = KPU__IPC__V1__RECORD_START__INIT;
        rs.device = SEED_DEVICE;
        rs.path = "../../../../tmp/escape.kcap";
        f.request_id = 3;
        f.body_case = KPU__IPC__V1__FRAME__BODY_RECORD_START;
        f.record_start = &rs;
        n = put(out, hello(out), &f);
        if (write_file(outdir, "record-escape", out, n) < 0)
            return -1;
    }
    {
        Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
        Kpu__Ipc__V1__Subscribe s = KPU__IPC__V1__SUBSCRIBE__INIT;
        Kpu__Ipc__V1__Filter flt = KPU__IPC__V1__FILTER__INIT;
        char *labels[] = {"face", "person"};
        flt.n_labels = 2;
        flt.labels = labels;
        flt.min_score = 0.5f;
        s.filter = &flt;
        s.max_rate_hz = 5;
        s.device_events = 1;
        f.request_id = 4;
        f.body_case = KPU__IPC__V1__FRAME__BODY_SUBSCRIBE;
        f.subscribe = &s;
        n = put(out, hello(out), &f);
        f.request_id = 5;
        n = put(out, n, &f); /* twice: two subscriptions */
        if (write_file(outdir, "subscribe-filter", out, n) < 0)
            return -1;
    }
    {
        /* A wrong major, and a length prefix beyond the frame limit. */
        Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
        Kpu__Ipc__V1__ClientHello h = KPU__IPC__V1__CLIENT_HELLO__INIT;
        h.protocol_major = 7;
        f.request_id = 1;
        f.body_case = KPU__IPC__V1__FRAME__BODY_CLIENT_HELLO;
        f.client_hello = &h;
        out[0] = IPC_CHUNK_BYTE;
        n = put(out, 1, &f);
        if (write_file(outdir, "wrong-major", out, n) < 0)
            return -1;
        n = hello(out);
        kipc_put_header(out + n, 0x7fffffffu);
        n += KIPC_HEADER_SIZE;
        if (write_file(outdir, "oversize-length", out, n) < 0)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "session")) {
        for (int i = 3; i < argc; i++)
            if (session_seed(argv[2], argv[i]) < 0)
                return 1;
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "ipc"))
        return ipc_seeds(argv[2]) < 0 ? 1 : 0;
    fprintf(stderr, "usage: seedgen session OUTDIR CAPTURE...\n       seedgen ipc OUTDIR\n");
    return 2;
}
