/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the agent core (firmware-agent/core) driven through the POSIX HAL's test
 * doors: requests are encoded with the host codec (protobuf-c) and klink, injected as uart
 * bytes; the agent's output is decoded the same way. So every test is also a nanopb <->
 * protobuf-c compatibility check. Covers HELLO, heartbeats, CONFIGURE (valid, invalid,
 * persisted), streaming with the real face model, snapshots with credits, the model store
 * (upload, bad CRC, invalid model, resume, power cut at every flash step, select, delete),
 * RESET, SET_BAUD, writing the agent's own boot image (ImageWrite*: the digest is built
 * here with OpenSSL, independently of the agent's SHA-256), and garbage, truncated and
 * unknown frames.
 */
#include <check.h>
#include <math.h>
#include <openssl/sha.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "hal/hal.h"
#include "hal_posix.h"
#include "image_load.h"
#include "klink.h"
#include "link_types.h"
#include "store.h"

#define FLASH_SIZE (4u * 1024u * 1024u)
#define MAX_RX 4096

/* ---- harness ------------------------------------------------------------------------ */

struct rx {
    uint8_t type, flags;
    uint16_t seq, ref;
    ProtobufCMessage *m;
};

static struct rx rxq[MAX_RX];
static int rxn;
static struct klink_decoder hdec;
static uint8_t hbuf[KLINK_MAX_FRAME];
static uint8_t take_buf[1 << 16];
static uint16_t host_seq = 1;
static char last_text[256];

static void host_reset(void)
{
    for (int i = 0; i < rxn; i++)
        protobuf_c_message_free_unpacked(rxq[i].m, NULL);
    rxn = 0;
    klink_decoder_init(&hdec, hbuf, sizeof(hbuf));
}

/* Take everything the agent wrote and decode it; every frame must unpack. */
static void collect(void)
{
    size_t n;

    while ((n = kfa_posix_take_tx(take_buf, sizeof(take_buf))) > 0) {
        const uint8_t *p = take_buf;
        struct klink_frame f;

        while (n > 0) {
            if (!klink_decode(&hdec, &p, &n, &f))
                continue;
            const ProtobufCMessageDescriptor *d = klink_type_descriptor(f.type);

            ck_assert_msg(d != NULL, "agent sent unknown type %u", f.type);
            ck_assert_int_lt(rxn, MAX_RX);
            rxq[rxn].type = f.type;
            rxq[rxn].flags = f.flags;
            rxq[rxn].seq = f.seq;
            rxq[rxn].ref = f.ref;
            rxq[rxn].m = protobuf_c_message_unpack(d, NULL, f.payload_len, f.payload);
            ck_assert_msg(rxq[rxn].m != NULL, "agent sent an undecodable %s",
                          klink_type_name(f.type));
            rxn++;
        }
    }
}

static void pump(int polls)
{
    for (int i = 0; i < polls; i++) {
        ck_assert_int_eq(kfa_agent_poll(), 0);
        collect();
    }
}

static void inject_frame(uint8_t type, uint8_t flags, uint16_t seq, const uint8_t *pl, size_t len)
{
    static uint8_t wire[KLINK_MAX_ENCODED];
    size_t n = klink_encode(type, flags, seq, 0, pl, len, wire, sizeof(wire));

    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(kfa_posix_inject_rx(wire, n), 0);
}

static uint16_t send_msg(uint8_t type, const ProtobufCMessage *m)
{
    static uint8_t pl[KLINK_MAX_PAYLOAD];
    size_t len = protobuf_c_message_get_packed_size(m);

    ck_assert_uint_le(len, sizeof(pl));
    protobuf_c_message_pack(m, pl);
    inject_frame(type, 0, host_seq, pl, len);
    return host_seq++;
}

/* The reply to request seq (polling until it shows up). */
static struct rx *reply_to(uint16_t seq)
{
    for (int polls = 0; polls < 2000; polls++) {
        for (int i = 0; i < rxn; i++)
            if ((rxq[i].flags & KLINK_FLAG_RESPONSE) && rxq[i].ref == seq)
                return &rxq[i];
        pump(1);
    }
    ck_abort_msg("no reply to seq %u", seq);
    return NULL;
}

static int count_type(uint8_t type)
{
    int n = 0;

    for (int i = 0; i < rxn; i++)
        n += rxq[i].type == type;
    return n;
}

static struct rx *last_of(uint8_t type)
{
    for (int i = rxn - 1; i >= 0; i--)
        if (rxq[i].type == type)
            return &rxq[i];
    return NULL;
}

/* Status code of the reply to seq (its text in last_text). */
static int status_of(uint16_t seq)
{
    struct rx *r = reply_to(seq);
    Kpu__Link__V1__Status *s;

    ck_assert_msg(r->type == KPU__LINK__V1__MSG_TYPE__MSG_STATUS, "reply is %s, not STATUS",
                  klink_type_name(r->type));
    s = (Kpu__Link__V1__Status *)r->m;
    snprintf(last_text, sizeof(last_text), "%s", s->text);
    return s->code;
}

static void boot(void)
{
    host_reset();
    kfa_hal_init();
    kfa_agent_init();
    collect();
}

static void setup(void)
{
    kfa_posix_uart_use_mem();
    kfa_posix_time_manual(1);
    kfa_posix_set_time_us(1000000);
    kfa_posix_set_seed(42);
    ck_assert_int_eq(kfa_posix_flash_use_ram(FLASH_SIZE), 0);
    kfa_posix_camera_pace(0, 1);
    boot();
}

static void teardown(void)
{
    host_reset();
}

/* ---- test data -------------------------------------------------------------------- */

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* A shared data file, or NULL after marking the test skipped (a failure when CI=true). */
static uint8_t *data_file(const char *rel, size_t *len)
{
    const char *root = getenv("KPU_TEST_DATA");
    const char *ci = getenv("CI");
    char path[1024];
    uint8_t *buf;

    snprintf(path, sizeof(path), "%s/%s", root ? root : "", rel);
    buf = root ? read_file(path, len) : NULL;
    if (!buf) {
        ck_assert_msg(!(ci && strcmp(ci, "true") == 0), "test data missing: %s", path);
        fprintf(stderr, "SKIP: test data missing: %s\n", path);
    }
    return buf;
}

/* ---- model upload over the link ----------------------------------------------------- */

static Kpu__Link__V1__ModelUploadState *up_state(uint16_t seq)
{
    struct rx *r = reply_to(seq);

    ck_assert_int_eq(r->type, KPU__LINK__V1__MSG_TYPE__MSG_MODEL_UPLOAD_STATE);
    return (Kpu__Link__V1__ModelUploadState *)r->m;
}

static uint32_t begin_upload(const char *name, const uint8_t *data, size_t len, uint32_t crc,
                             const uint8_t *man, size_t mlen, uint32_t *next, int *code)
{
    Kpu__Link__V1__ModelUploadBegin b = KPU__LINK__V1__MODEL_UPLOAD_BEGIN__INIT;
    Kpu__Link__V1__ModelUploadState *st;

    b.name = (char *)name;
    b.size = (uint32_t)len;
    b.crc32c = crc;
    b.manifest.data = (uint8_t *)man;
    b.manifest.len = mlen;
    st = up_state(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_UPLOAD_BEGIN, &b.base));
    *next = st->next_offset;
    *code = st->code;
    return st->upload_id;
}

/* One chunk of an upload (type MODEL_UPLOAD_CHUNK) or image write (IMAGE_WRITE_CHUNK). */
static int chunk_of(uint8_t type, uint32_t id, uint32_t off, const uint8_t *data, size_t n,
                    uint32_t *next)
{
    Kpu__Link__V1__ModelUploadChunk c = KPU__LINK__V1__MODEL_UPLOAD_CHUNK__INIT;
    Kpu__Link__V1__ModelUploadState *st;

    c.upload_id = id;
    c.offset = off;
    c.data.data = (uint8_t *)data + off;
    c.data.len = n;
    st = up_state(send_msg(type, &c.base));
    *next = st->next_offset;
    return st->code;
}

static int send_chunk(uint32_t id, uint32_t off, const uint8_t *data, size_t n, uint32_t *next)
{
    return chunk_of(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_UPLOAD_CHUNK, id, off, data, n, next);
}

/* Chunks of 2 KiB from *next to len, following the agent's next offset. 0 or a code. */
static int send_rest(uint8_t type, uint32_t id, const uint8_t *data, size_t len, uint32_t *next)
{
    while (*next < len) {
        size_t n = len - *next > 2048 ? 2048 : len - *next;
        int code = chunk_of(type, id, *next, data, n, next);

        if (code != 0)
            return code;
    }
    return 0;
}

static int commit_upload(uint32_t id)
{
    Kpu__Link__V1__ModelUploadCommit c = KPU__LINK__V1__MODEL_UPLOAD_COMMIT__INIT;

    c.upload_id = id;
    return status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_UPLOAD_COMMIT, &c.base));
}

/* Upload a whole model; returns the commit's status (or the first failing step's code). */
static int upload_crc(const char *name, const uint8_t *data, size_t len, uint32_t crc,
                      const uint8_t *man, size_t mlen)
{
    uint32_t next, id;
    int code;

    id = begin_upload(name, data, len, crc, man, mlen, &next, &code);
    if (code != 0)
        return code;
    code = send_rest(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_UPLOAD_CHUNK, id, data, len, &next);
    return code != 0 ? code : commit_upload(id);
}

static int upload(const char *name, const uint8_t *data, size_t len, const uint8_t *man,
                  size_t mlen)
{
    return upload_crc(name, data, len, klink_crc32c(0, data, len), man, mlen);
}

static Kpu__Link__V1__ModelList *model_list(void)
{
    Kpu__Link__V1__ModelListRequest m = KPU__LINK__V1__MODEL_LIST_REQUEST__INIT;
    struct rx *r = reply_to(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_LIST, &m.base));

    ck_assert_int_eq(r->type, KPU__LINK__V1__MSG_TYPE__MSG_MODEL_LIST_REPLY);
    return (Kpu__Link__V1__ModelList *)r->m;
}

static Kpu__Link__V1__StoredModel *listed(Kpu__Link__V1__ModelList *l, const char *name)
{
    for (size_t i = 0; i < l->n_models; i++)
        if (strcmp(l->models[i]->name, name) == 0)
            return l->models[i];
    return NULL;
}

static int simple_name_req(uint8_t type, const char *name)
{
    Kpu__Link__V1__ModelSelect m = KPU__LINK__V1__MODEL_SELECT__INIT; /* same shape as Delete */

    m.name = (char *)name;
    return status_of(send_msg(type, &m.base));
}

static int stream(int start)
{
    Kpu__Link__V1__StreamControl m = KPU__LINK__V1__STREAM_CONTROL__INIT;

    m.action = start ? KPU__LINK__V1__STREAM_ACTION__STREAM_START
                     : KPU__LINK__V1__STREAM_ACTION__STREAM_STOP;
    return status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_STREAM_CONTROL, &m.base));
}

static Kpu__Link__V1__Configure *config_get(void)
{
    Kpu__Link__V1__ConfigGet m = KPU__LINK__V1__CONFIG_GET__INIT;
    struct rx *r = reply_to(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_CONFIG_GET, &m.base));

    ck_assert_int_eq(r->type, KPU__LINK__V1__MSG_TYPE__MSG_CONFIGURE);
    return (Kpu__Link__V1__Configure *)r->m;
}

/* ---- HELLO, heartbeat --------------------------------------------------------------- */

START_TEST(boot_sends_hello)
{
    struct rx *r = last_of(KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO);
    Kpu__Link__V1__AgentHello *h;

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->flags & KLINK_FLAG_RESPONSE, 0);
    h = (Kpu__Link__V1__AgentHello *)r->m;
    ck_assert_uint_eq(h->protocol_major, 1);
    ck_assert_uint_eq(h->protocol_minor, 1) /* 1.1: ImageWrite* */;
    ck_assert_str_eq(h->agent_version, KFA_AGENT_VERSION);
    ck_assert_int_eq(h->board, KPU__LINK__V1__BOARD__BOARD_SIM);
    ck_assert_int_eq(h->sensor, KPU__LINK__V1__SENSOR__SENSOR_SYNTHETIC);
    ck_assert_uint_eq(h->chip_uid.len, 16);
    ck_assert_uint_eq(h->kpu_ram_bytes, 2u * 1024u * 1024u);
    ck_assert_uint_eq(h->flash_bytes, FLASH_SIZE);
    ck_assert_uint_eq(h->n_models, 0);
    ck_assert_int_eq(h->reset_cause, KPU__LINK__V1__RESET_CAUSE__RESET_CAUSE_POWER_ON);
    ck_assert_uint_eq(h->max_payload, KLINK_MAX_PAYLOAD);
    ck_assert(h->features & KPU__LINK__V1__FEATURE__FEATURE_MODEL_STORE);
    ck_assert(h->features & KPU__LINK__V1__FEATURE__FEATURE_SNAPSHOT);
    ck_assert(!(h->features & KPU__LINK__V1__FEATURE__FEATURE_HW_KPU));
}
END_TEST

START_TEST(hello_reply_and_uid_from_seed)
{
    Kpu__Link__V1__HostHello hh = KPU__LINK__V1__HOST_HELLO__INIT;
    Kpu__Link__V1__AgentHello *h;
    uint8_t uid42[16], uid7[16];
    struct rx *r;
    uint16_t seq;

    hh.protocol_major = 1;
    hh.host_version = "9.9.9";
    seq = send_msg(KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO, &hh.base);
    r = reply_to(seq);
    ck_assert_int_eq(r->type, KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO);
    h = (Kpu__Link__V1__AgentHello *)r->m;
    memcpy(uid42, h->chip_uid.data, 16);

    /* Same seed, same uid after a reboot; another seed, another uid. */
    boot();
    h = (Kpu__Link__V1__AgentHello *)last_of(KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO)->m;
    ck_assert_mem_eq(h->chip_uid.data, uid42, 16);
    kfa_posix_set_seed(7);
    boot();
    h = (Kpu__Link__V1__AgentHello *)last_of(KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO)->m;
    memcpy(uid7, h->chip_uid.data, 16);
    ck_assert(memcmp(uid7, uid42, 16) != 0);

    hh.protocol_major = 0;
    ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO, &hh.base)),
                     KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
}
END_TEST

START_TEST(heartbeat_every_second_when_connected)
{
    Kpu__Link__V1__HostHello hh = KPU__LINK__V1__HOST_HELLO__INIT;
    Kpu__Link__V1__Heartbeat hb = KPU__LINK__V1__HEARTBEAT__INIT;
    Kpu__Link__V1__Heartbeat *got;
    int before;

    /* Not connected yet: no heartbeat however long we wait. */
    kfa_posix_advance_us(5000000);
    pump(3);
    ck_assert_int_eq(count_type(KPU__LINK__V1__MSG_TYPE__MSG_HEARTBEAT), 0);

    hh.protocol_major = 1;
    reply_to(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO, &hh.base));
    pump(2);
    ck_assert_int_eq(count_type(KPU__LINK__V1__MSG_TYPE__MSG_HEARTBEAT), 0);
    kfa_posix_advance_us(1000000);
    pump(2);
    ck_assert_int_eq(count_type(KPU__LINK__V1__MSG_TYPE__MSG_HEARTBEAT), 1);
    got = (Kpu__Link__V1__Heartbeat *)last_of(KPU__LINK__V1__MSG_TYPE__MSG_HEARTBEAT)->m;
    ck_assert_uint_eq(got->uptime_ms, 7000);
    ck_assert(!got->streaming);
    ck_assert_uint_gt(got->free_bytes, 0);

    /* The host's heartbeats are accepted silently and keep the session alive. */
    before = rxn;
    for (int s = 0; s < 15; s++) {
        hb.uptime_ms = (uint64_t)s * 1000u;
        send_msg(KPU__LINK__V1__MSG_TYPE__MSG_HEARTBEAT, &hb.base);
        kfa_posix_advance_us(1000000);
        pump(2);
    }
    ck_assert_int_eq(count_type(KPU__LINK__V1__MSG_TYPE__MSG_STATUS), 0);
    ck_assert_int_ge(rxn - before, 15);

    /* A host silent for more than 10 s is gone: heartbeats stop. */
    kfa_posix_advance_us(11000000);
    pump(2);
    before = count_type(KPU__LINK__V1__MSG_TYPE__MSG_HEARTBEAT);
    kfa_posix_advance_us(3000000);
    pump(3);
    ck_assert_int_eq(count_type(KPU__LINK__V1__MSG_TYPE__MSG_HEARTBEAT), before);
}
END_TEST

/* ---- CONFIGURE ---------------------------------------------------------------------- */

START_TEST(configure_valid_and_get)
{
    Kpu__Link__V1__Configure c = KPU__LINK__V1__CONFIGURE__INIT;
    Kpu__Link__V1__Rect roi = KPU__LINK__V1__RECT__INIT;
    float anchors[4] = {1.5f, 2.0f, 3.0f, 4.5f};
    Kpu__Link__V1__Configure *g;

    c.threshold = 0.6f;
    c.nms = 0.25f;
    c.n_anchors = 4;
    c.anchors = anchors;
    c.max_boxes = 5;
    c.fps_cap = 10;
    roi.x = 10;
    roi.y = 20;
    roi.w = 100;
    roi.h = 50;
    c.roi = &roi;
    ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_CONFIGURE, &c.base)), 0);
    g = config_get();
    ck_assert_float_eq(g->threshold, 0.6f);
    ck_assert_float_eq(g->nms, 0.25f);
    ck_assert_uint_eq(g->n_anchors, 4);
    ck_assert_float_eq(g->anchors[3], 4.5f);
    ck_assert_uint_eq(g->max_boxes, 5);
    ck_assert_uint_eq(g->fps_cap, 10);
    ck_assert_ptr_nonnull(g->roi);
    ck_assert_uint_eq(g->roi->y, 20);
    ck_assert_uint_eq(g->roi->h, 50);
    ck_assert(!g->persist);
}
END_TEST

static const struct bad_cfg {
    const char *what;
    float threshold, nms, anchor0;
    int n_anchors;
    uint32_t max_boxes, fps_cap, roi_w;
    const char *model;
    int code;
} bad_cfgs[] = {
    {"threshold > 1", 1.5f, 0, 1, 0, 0, 0, 1, "", 1},
    {"threshold NaN", NAN, 0, 1, 0, 0, 0, 1, "", 1},
    {"nms < 0", 0.5f, -0.1f, 1, 0, 0, 0, 1, "", 1},
    {"odd anchors", 0.5f, 0.3f, 1, 3, 0, 0, 1, "", 1},
    {"negative anchor", 0.5f, 0.3f, -1, 2, 0, 0, 1, "", 1},
    {"max_boxes 33", 0.5f, 0.3f, 1, 0, 33, 0, 1, "", 1},
    {"fps_cap 5000", 0.5f, 0.3f, 1, 0, 0, 5000, 1, "", 1},
    {"roi w 0", 0.5f, 0.3f, 1, 0, 0, 0, 0, "", 1},
    {"bad model name", 0.5f, 0.3f, 1, 0, 0, 0, 1, "a/b", 1},
    {"unknown model", 0.5f, 0.3f, 1, 0, 0, 0, 1, "nope", 4},
};

START_TEST(configure_invalid)
{
    const struct bad_cfg *b = &bad_cfgs[_i];
    Kpu__Link__V1__Configure c = KPU__LINK__V1__CONFIGURE__INIT;
    Kpu__Link__V1__Rect roi = KPU__LINK__V1__RECT__INIT;
    float anchors[4];
    Kpu__Link__V1__Configure *g;

    for (int i = 0; i < 4; i++)
        anchors[i] = i == 0 ? b->anchor0 : 2.0f;
    c.threshold = b->threshold;
    c.nms = b->nms;
    c.n_anchors = (size_t)b->n_anchors;
    c.anchors = anchors;
    c.max_boxes = b->max_boxes;
    c.fps_cap = b->fps_cap;
    roi.w = b->roi_w;
    roi.h = 10;
    c.roi = &roi;
    c.model = (char *)b->model;
    c.persist = 1;
    ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_CONFIGURE, &c.base)), b->code);
    ck_assert_msg(last_text[0] != '\0', "%s: no text", b->what);
    /* Nothing was applied or persisted. */
    g = config_get();
    ck_assert_float_eq(g->threshold, 0.0f);
    ck_assert_uint_eq(g->max_boxes, 0);
    ck_assert(!g->persist);
    boot();
    g = config_get();
    ck_assert(!g->persist);
}
END_TEST

START_TEST(configure_persist_survives_reboot)
{
    Kpu__Link__V1__Configure c = KPU__LINK__V1__CONFIGURE__INIT;
    Kpu__Link__V1__Configure *g;

    c.threshold = 0.7f;
    c.fps_cap = 15;
    c.persist = 1;
    ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_CONFIGURE, &c.base)), 0);
    /* A later configuration without persist lives until the reboot only. */
    c.threshold = 0.2f;
    c.persist = 0;
    ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_CONFIGURE, &c.base)), 0);
    ck_assert_float_eq(config_get()->threshold, 0.2f);
    boot();
    g = config_get();
    ck_assert_float_eq(g->threshold, 0.7f);
    ck_assert_uint_eq(g->fps_cap, 15);
    ck_assert(g->persist);

    /* A corrupted config record is ignored (defaults), not trusted. */
    kfa_posix_flash_ptr()[KFA_STORE_CFG_A + 20] ^= 0x55;
    kfa_posix_flash_ptr()[KFA_STORE_CFG_B + 20] ^= 0x55;
    boot();
    g = config_get();
    ck_assert_float_eq(g->threshold, 0.0f);
    ck_assert(!g->persist);
}
END_TEST

/* ---- bad input ---------------------------------------------------------------------- */

START_TEST(unknown_and_wrong_types)
{
    static const uint8_t types[] = {0,
                                    KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO,
                                    KPU__LINK__V1__MSG_TYPE__MSG_STATUS,
                                    KPU__LINK__V1__MSG_TYPE__MSG_DETECTION_FRAME,
                                    26,
                                    200,
                                    255};

    for (size_t i = 0; i < sizeof(types); i++) {
        inject_frame(types[i], 0, host_seq, NULL, 0);
        ck_assert_int_eq(status_of(host_seq++), KPU__LINK__V1__STATUS_CODE__STATUS_UNSUPPORTED);
    }
}
END_TEST

START_TEST(undecodable_payloads)
{
    /* Field 1 as a length-delimited string of 200 bytes: longer than host_version allows;
     * a truncated varint; a wrong wire type for a known field. */
    uint8_t long_str[210] = {0x1a, 200};
    static const uint8_t trunc[] = {0x08, 0xff, 0xff};
    static const uint8_t wrong_wire[] = {0x0d, 1, 2, 3};
    uint8_t big_manifest[1600 + 8];
    size_t n = 0;

    memset(long_str + 2, 'x', 200);
    inject_frame(KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO, 0, host_seq, long_str, 202);
    ck_assert_int_eq(status_of(host_seq++), KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    ck_assert_msg(strstr(last_text, "decode") != NULL, "text: %s", last_text);
    inject_frame(KPU__LINK__V1__MSG_TYPE__MSG_CONFIGURE, 0, host_seq, trunc, sizeof(trunc));
    ck_assert_int_eq(status_of(host_seq++), KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    inject_frame(KPU__LINK__V1__MSG_TYPE__MSG_STREAM_CONTROL, 0, host_seq, wrong_wire,
                 sizeof(wrong_wire));
    ck_assert_int_eq(status_of(host_seq++), KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    /* Manifest over its 1536-byte bound. */
    big_manifest[n++] = 0x22;
    big_manifest[n++] = (uint8_t)(1600 & 0x7f) | 0x80;
    big_manifest[n++] = (uint8_t)(1600 >> 7);
    memset(big_manifest + n, 'm', 1600);
    n += 1600;
    inject_frame(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_UPLOAD_BEGIN, 0, host_seq, big_manifest, n);
    ck_assert_int_eq(status_of(host_seq++), KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
}
END_TEST

START_TEST(garbage_and_truncated_frames)
{
    Kpu__Link__V1__HostHello hh = KPU__LINK__V1__HOST_HELLO__INIT;
    uint8_t noise[4096];
    uint32_t x = 0x1234567u;
    uint8_t wire[64];
    size_t n;
    struct kfa_agent_stats st;

    for (size_t i = 0; i < sizeof(noise); i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (uint8_t)(x >> 16);
    }
    ck_assert_int_eq(kfa_posix_inject_rx(noise, sizeof(noise)), 0);
    /* A frame cut short by a delimiter: truncated. */
    n = klink_encode(KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO, 0, 99, 0, (const uint8_t *)"\x08\x01",
                     2, wire, sizeof(wire));
    ck_assert_int_eq(kfa_posix_inject_rx(wire, n - 4), 0);
    ck_assert_int_eq(kfa_posix_inject_rx("\0", 1), 0);
    pump(4);
    ck_assert_int_eq(count_type(KPU__LINK__V1__MSG_TYPE__MSG_STATUS) +
                         count_type(KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO),
                     1 /* the boot hello */ + 0);
    kfa_agent_get_stats(&st);
    ck_assert_uint_gt(st.rx_errors, 0);
    /* The agent is in sync again: the next good frame is answered. */
    hh.protocol_major = 1;
    ck_assert_int_eq(reply_to(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO, &hh.base))->type,
                     KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO);
}
END_TEST

START_TEST(closed_link_ends_poll)
{
    kfa_posix_close_rx();
    ck_assert_int_eq(kfa_agent_poll(), KFA_HAL_E_CLOSED);
}
END_TEST

/* ---- model store ---------------------------------------------------------------------- */

START_TEST(upload_list_select_delete)
{
    size_t ilen, mlen;
    uint8_t *iris = data_file("models/iris_fc.kmodel", &ilen);
    uint8_t *mnist = data_file("models/mnist_28x28.kmodel", &mlen);
    static const uint8_t man[] = "[model]\nkind = classifier\n";
    Kpu__Link__V1__ModelList *l;
    Kpu__Link__V1__AgentHello *h;
    const struct kfa_store_entry *e;
    char back[sizeof(man)];

    if (!iris || !mnist)
        return;
    ck_assert_int_eq(upload("iris", iris, ilen, man, sizeof(man) - 1), 0);
    ck_assert_int_eq(upload("mnist", mnist, mlen, NULL, 0), 0);
    l = model_list();
    ck_assert_uint_eq(l->n_models, 2);
    ck_assert_uint_eq(listed(l, "iris")->size, ilen);
    ck_assert_uint_eq(listed(l, "iris")->crc32c, klink_crc32c(0, iris, ilen));
    ck_assert(listed(l, "iris")->selected); /* the first model of an empty store */
    ck_assert(!listed(l, "mnist")->selected);
    ck_assert_uint_lt(l->free_bytes, FLASH_SIZE - KFA_STORE_DATA_BASE - mlen);
    /* The manifest is kept with the model. */
    e = kfa_store_find("iris");
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->manifest_len, sizeof(man) - 1);
    ck_assert_int_eq(kfa_store_read(e, 1, 0, back, sizeof(man) - 1), 0);
    ck_assert_mem_eq(back, man, sizeof(man) - 1);

    ck_assert_int_eq(simple_name_req(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_SELECT, "mnist"), 0);
    ck_assert_int_eq(simple_name_req(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_SELECT, "nope"),
                     KPU__LINK__V1__STATUS_CODE__STATUS_NO_SUCH_MODEL);
    ck_assert_int_eq(simple_name_req(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_SELECT, ""),
                     KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    /* Selection and store survive a reboot, and HELLO lists them. */
    boot();
    h = (Kpu__Link__V1__AgentHello *)last_of(KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO)->m;
    ck_assert_uint_eq(h->n_models, 2);
    l = model_list();
    ck_assert(listed(l, "mnist")->selected);
    ck_assert(kfa_agent_model_loaded());

    ck_assert_int_eq(simple_name_req(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_DELETE, "iris"), 0);
    ck_assert_int_eq(simple_name_req(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_DELETE, "iris"),
                     KPU__LINK__V1__STATUS_CODE__STATUS_NO_SUCH_MODEL);
    ck_assert_int_eq(simple_name_req(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_DELETE, "mnist"), 0);
    ck_assert(!kfa_agent_model_loaded());
    boot();
    ck_assert_uint_eq(model_list()->n_models, 0);
    /* Starting without a model is refused. */
    ck_assert_int_eq(stream(1), KPU__LINK__V1__STATUS_CODE__STATUS_NO_SUCH_MODEL);
    free(iris);
    free(mnist);
}
END_TEST

START_TEST(upload_bad_crc_and_invalid_model)
{
    size_t ilen;
    uint8_t *iris = data_file("models/iris_fc.kmodel", &ilen);
    uint8_t junk[5000];

    if (!iris)
        return;
    ck_assert_int_eq(upload_crc("iris", iris, ilen, klink_crc32c(0, iris, ilen) ^ 1u, NULL, 0),
                     KPU__LINK__V1__STATUS_CODE__STATUS_CRC_MISMATCH);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 7u + 3u);
    ck_assert_int_eq(upload("junk", junk, sizeof(junk), NULL, 0),
                     KPU__LINK__V1__STATUS_CODE__STATUS_MODEL_INVALID);
    ck_assert_msg(strstr(last_text, "kmodel") != NULL, "text: %s", last_text);
    ck_assert_uint_eq(model_list()->n_models, 0);
    /* Bad begin fields. */
    ck_assert_int_eq(upload("a b", iris, ilen, NULL, 0),
                     KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    ck_assert_int_eq(upload("", iris, ilen, NULL, 0),
                     KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    ck_assert_int_eq(upload("huge", iris, 0, NULL, 0),
                     KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    /* Commit of an unknown upload; chunk of an unknown upload. */
    ck_assert_int_eq(commit_upload(12345), KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    {
        uint32_t next;

        ck_assert_int_eq(send_chunk(777, 0, iris, 16, &next),
                         KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    }
    ck_assert_int_eq(upload("iris", iris, ilen, NULL, 0), 0);
    ck_assert_uint_eq(model_list()->n_models, 1);
    free(iris);
}
END_TEST

START_TEST(upload_resume_after_interruption)
{
    size_t mlen;
    uint8_t *mnist = data_file("models/mnist_28x28.kmodel", &mlen);
    uint32_t crc, id, id2, next;
    int code;

    if (!mnist)
        return;
    crc = klink_crc32c(0, mnist, mlen);
    id = begin_upload("mnist", mnist, mlen, crc, NULL, 0, &next, &code);
    ck_assert_int_eq(code, 0);
    ck_assert_uint_eq(next, 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(send_chunk(id, next, mnist, 2048, &next), 0);
    ck_assert_uint_eq(next, 20480);
    /* A chunk at the wrong offset (a retransmission) is refused with the resume point. */
    ck_assert_int_eq(send_chunk(id, 2048, mnist, 2048, &next),
                     KPU__LINK__V1__STATUS_CODE__STATUS_BAD_OFFSET);
    ck_assert_uint_eq(next, 20480);
    /* Commit before the end: refused, upload kept. */
    ck_assert_int_eq(commit_upload(id), KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    /* The host reconnects and begins again: same upload, resume point. */
    host_reset();
    id2 = begin_upload("mnist", mnist, mlen, crc, NULL, 0, &next, &code);
    ck_assert_int_eq(code, 0);
    ck_assert_uint_eq(id2, id);
    ck_assert_uint_eq(next, 20480);
    while (next < mlen)
        ck_assert_int_eq(
            send_chunk(id, next, mnist, mlen - next > 2048 ? 2048 : mlen - next, &next), 0);
    ck_assert_int_eq(commit_upload(id), 0);
    /* A retried commit (reply lost) is answered OK again. */
    ck_assert_int_eq(commit_upload(id), 0);
    ck_assert_uint_eq(model_list()->n_models, 1);
    /* A begin with other parameters starts a new upload. */
    id2 = begin_upload("mnist", mnist, mlen - 1, crc, NULL, 0, &next, &code);
    ck_assert_uint_ne(id2, id);
    ck_assert_uint_eq(next, 0);
    free(mnist);
}
END_TEST

/* Check the store after a reboot: every listed model's bytes match its CRC. */
static void check_store_consistent(void)
{
    static uint8_t buf[1u << 20];
    char text[128];

    for (unsigned i = 0; i < kfa_store_count(); i++) {
        const struct kfa_store_entry *e = kfa_store_entry_at(i);

        ck_assert_int_eq(kfa_store_load(e, buf, sizeof(buf), text, sizeof(text)), 0);
    }
}

static void power_cut_scenario(const char *name, const uint8_t *data, size_t len, const uint8_t *a,
                               size_t alen)
{
    unsigned long total;

    /* Dry run: how many flash operations the upload takes. */
    setup();
    ck_assert_int_eq(upload("a", a, alen, NULL, 0), 0);
    total = kfa_posix_flash_ops();
    ck_assert_int_eq(upload(name, data, len, (const uint8_t *)"m=1", 3), 0);
    total = kfa_posix_flash_ops() - total;
    ck_assert_uint_gt(total, 2);

    for (unsigned long k = 0; k <= total; k++) {
        uint32_t crc_a = klink_crc32c(0, a, alen);
        const struct kfa_store_entry *e;

        setup();
        ck_assert_int_eq(upload("a", a, alen, NULL, 0), 0);
        kfa_posix_flash_cut_after((long)k);
        (void)upload(name, data, len, (const uint8_t *)"m=1", 3);
        kfa_posix_flash_cut_after(-1);
        boot(); /* power back */
        check_store_consistent();
        e = kfa_store_find(name);
        if (k < total) {
            /* Before the last operation completes, the old store is what is there. */
            ck_assert_msg(strcmp(name, "a") == 0 || e == NULL, "cut %lu/%lu: new model listed", k,
                          total);
            e = kfa_store_find("a");
            ck_assert_ptr_nonnull(e);
            ck_assert_uint_eq(e->crc32c, crc_a);
        } else {
            ck_assert_ptr_nonnull(e);
            ck_assert_uint_eq(e->crc32c, klink_crc32c(0, data, len));
            ck_assert_uint_eq(e->manifest_len, 3);
        }
        /* And the store still works: another upload after the cut succeeds. */
        ck_assert_int_eq(upload("after", a, alen, NULL, 0), 0);
        host_reset();
    }
}

START_TEST(power_cut_at_every_flash_step)
{
    size_t ilen, mlen;
    uint8_t *iris = data_file("models/iris_fc.kmodel", &ilen);
    uint8_t *mnist = data_file("models/mnist_28x28.kmodel", &mlen);

    if (!iris || !mnist)
        return;
    power_cut_scenario("b", iris, ilen, iris, ilen);  /* add a model */
    power_cut_scenario("a", mnist, mlen, iris, ilen); /* replace one */
    free(iris);
    free(mnist);
}
END_TEST

START_TEST(power_cut_during_delete_and_select)
{
    size_t ilen;
    uint8_t *iris = data_file("models/iris_fc.kmodel", &ilen);

    if (!iris)
        return;
    for (long k = 0; k < 3; k++) {
        setup();
        ck_assert_int_eq(upload("a", iris, ilen, NULL, 0), 0);
        ck_assert_int_eq(upload("b", iris, ilen, NULL, 0), 0);
        kfa_posix_flash_cut_after(k);
        (void)simple_name_req(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_DELETE, "a");
        (void)simple_name_req(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_SELECT, "b");
        kfa_posix_flash_cut_after(-1);
        boot();
        check_store_consistent();
        ck_assert_ptr_nonnull(kfa_store_find("b"));
        ck_assert_uint_ge(kfa_store_count(), 1);
        ck_assert(strcmp(kfa_store_selected(), "a") == 0 ||
                  strcmp(kfa_store_selected(), "b") == 0 || kfa_store_selected()[0] == '\0');
        host_reset();
    }
    free(iris);
}
END_TEST

START_TEST(store_full)
{
    size_t ilen;
    uint8_t *iris = data_file("models/iris_fc.kmodel", &ilen);
    char name[8];

    if (!iris)
        return;
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        ck_assert_int_eq(upload(name, iris, ilen, NULL, 0), 0);
    }
    ck_assert_int_eq(upload("m8", iris, ilen, NULL, 0),
                     KPU__LINK__V1__STATUS_CODE__STATUS_NO_SPACE);
    /* Replacing one of the eight is fine. */
    ck_assert_int_eq(upload("m3", iris, ilen, NULL, 0), 0);
    ck_assert_uint_eq(model_list()->n_models, 8);
    free(iris);
}
END_TEST

/* ---- streaming with the real face model ------------------------------------------- */

static uint8_t *face_model(size_t *len, uint8_t **man, size_t *mlen)
{
    uint8_t *m = data_file("models/maixpy_facedetect_320x240.kmodel", len);

    if (!m)
        return NULL;
    *man = read_file(KFA_MODELS_DIR "/maixpy_facedetect_320x240.ini", mlen);
    ck_assert_ptr_nonnull(*man);
    return m;
}

static int load_camera_image(const char *rel)
{
    const char *root = getenv("KPU_TEST_DATA");
    struct kfa_loaded_image img;
    char path[1024], err[160];

    snprintf(path, sizeof(path), "%s/%s", root ? root : "", rel);
    if (kfa_image_load(path, &img, err, sizeof(err)) != 0)
        return -1;
    kfa_posix_camera_clear();
    ck_assert_int_eq(kfa_posix_camera_add(img.rgb, img.width, img.height), 0);
    kfa_image_free(&img);
    return 0;
}

static int near(int32_t a, int32_t b, int32_t tol)
{
    return a - b <= tol && b - a <= tol;
}

START_TEST(stream_face_detections)
{
    size_t len, mlen;
    uint8_t *man = NULL;
    uint8_t *model = face_model(&len, &man, &mlen);
    Kpu__Link__V1__DetectionFrame *d;
    int frames = 0, found_left = 0, found_right = 0;
    uint32_t seq0 = 0;

    if (!model)
        return;
    ck_assert_int_eq(load_camera_image("images/two_faces_320x240.jpg"), 0);
    ck_assert_int_eq(upload("face", model, len, man, mlen), 0);
    ck_assert_int_eq(stream(1), 0);
    pump(3);
    for (int i = 0; i < rxn; i++) {
        if (rxq[i].type != KPU__LINK__V1__MSG_TYPE__MSG_DETECTION_FRAME)
            continue;
        d = (Kpu__Link__V1__DetectionFrame *)rxq[i].m;
        if (frames == 0)
            seq0 = d->frame_seq;
        ck_assert_uint_eq(d->frame_seq, seq0 + (uint32_t)frames);
        ck_assert_uint_eq(d->model_crc, klink_crc32c(0, model, len));
        ck_assert_uint_eq(d->image_width, 320);
        ck_assert_uint_eq(d->image_height, 240);
        ck_assert_uint_eq(rxq[i].flags, 0);
        frames++;
        if (frames == 1) {
            /* Expected (shared/data .md, emulated): 0.83 (63,14)-(87,47), (223,16)-(243,42) */
            ck_assert_uint_eq(d->n_boxes, 2);
            for (size_t b = 0; b < d->n_boxes; b++) {
                Kpu__Link__V1__Box *x = d->boxes[b];

                ck_assert_uint_eq(x->class_id, 0);
                ck_assert(x->score > 0.7f && x->score < 0.95f);
                if (near(x->x, 63, 3) && near(x->y, 14, 3) && near((int32_t)x->w, 24, 4) &&
                    near((int32_t)x->h, 33, 4))
                    found_left = 1;
                if (near(x->x, 223, 3) && near(x->y, 16, 3) && near((int32_t)x->w, 20, 4) &&
                    near((int32_t)x->h, 26, 4))
                    found_right = 1;
            }
        }
    }
    ck_assert_int_ge(frames, 2);
    ck_assert(found_left && found_right);

    /* Threshold above both scores: empty frames keep coming (with their sequence). */
    {
        Kpu__Link__V1__Configure c = KPU__LINK__V1__CONFIGURE__INIT;

        c.threshold = 0.97f;
        ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_CONFIGURE, &c.base)), 0);
        pump(1);
        d = (Kpu__Link__V1__DetectionFrame *)last_of(KPU__LINK__V1__MSG_TYPE__MSG_DETECTION_FRAME)
                ->m;
        ck_assert_uint_eq(d->n_boxes, 0);
    }
    /* Anchors that do not fit the model's output are refused. */
    {
        Kpu__Link__V1__Configure c = KPU__LINK__V1__CONFIGURE__INIT;
        float an[6] = {1, 1, 2, 2, 3, 3};

        c.n_anchors = 6;
        c.anchors = an;
        ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_CONFIGURE, &c.base)),
                         KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    }
    /* Deleting the streaming model is refused; STOP ends the frames. */
    ck_assert_int_eq(simple_name_req(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_DELETE, "face"),
                     KPU__LINK__V1__STATUS_CODE__STATUS_BUSY);
    ck_assert_int_eq(stream(0), 0);
    frames = count_type(KPU__LINK__V1__MSG_TYPE__MSG_DETECTION_FRAME);
    pump(3);
    ck_assert_int_eq(count_type(KPU__LINK__V1__MSG_TYPE__MSG_DETECTION_FRAME), frames);
    free(model);
    free(man);
}
END_TEST

START_TEST(stream_roi_and_max_boxes)
{
    size_t len, mlen;
    uint8_t *man = NULL;
    uint8_t *model = face_model(&len, &man, &mlen);
    Kpu__Link__V1__Configure c = KPU__LINK__V1__CONFIGURE__INIT;
    Kpu__Link__V1__Rect roi = KPU__LINK__V1__RECT__INIT;
    Kpu__Link__V1__DetectionFrame *d;

    if (!model)
        return;
    ck_assert_int_eq(load_camera_image("images/two_faces_320x240.jpg"), 0);
    ck_assert_int_eq(upload("face", model, len, man, mlen), 0);
    /* Only the right half of the frame: the right face. */
    roi.x = 160;
    roi.y = 0;
    roi.w = 160;
    roi.h = 240;
    c.roi = &roi;
    c.model = "face";
    ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_CONFIGURE, &c.base)), 0);
    ck_assert_int_eq(stream(1), 0);
    pump(1);
    d = (Kpu__Link__V1__DetectionFrame *)last_of(KPU__LINK__V1__MSG_TYPE__MSG_DETECTION_FRAME)->m;
    ck_assert_uint_eq(d->n_boxes, 1);
    ck_assert_int_gt(d->boxes[0]->x, 160);
    c.roi = NULL;
    c.max_boxes = 1;
    ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_CONFIGURE, &c.base)), 0);
    pump(1);
    d = (Kpu__Link__V1__DetectionFrame *)last_of(KPU__LINK__V1__MSG_TYPE__MSG_DETECTION_FRAME)->m;
    ck_assert_uint_eq(d->n_boxes, 1);
    free(model);
    free(man);
}
END_TEST

START_TEST(fps_cap_paces_frames)
{
    size_t len, mlen;
    uint8_t *man = NULL;
    uint8_t *model = face_model(&len, &man, &mlen);
    Kpu__Link__V1__Configure c = KPU__LINK__V1__CONFIGURE__INIT;
    int before;

    if (!model)
        return;
    ck_assert_int_eq(upload("face", model, len, man, mlen), 0);
    c.fps_cap = 2;
    ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_CONFIGURE, &c.base)), 0);
    ck_assert_int_eq(stream(1), 0);
    pump(2);
    before = count_type(KPU__LINK__V1__MSG_TYPE__MSG_DETECTION_FRAME);
    ck_assert_int_eq(before, 1); /* the manual clock stood still: one frame only */
    kfa_posix_advance_us(400000);
    pump(2);
    ck_assert_int_eq(count_type(KPU__LINK__V1__MSG_TYPE__MSG_DETECTION_FRAME), before);
    kfa_posix_advance_us(200000);
    pump(2);
    ck_assert_int_eq(count_type(KPU__LINK__V1__MSG_TYPE__MSG_DETECTION_FRAME), before + 1);
    free(model);
    free(man);
}
END_TEST

/* ---- snapshots ------------------------------------------------------------------------ */

START_TEST(snapshot_with_credits)
{
    Kpu__Link__V1__SnapshotRequest r = KPU__LINK__V1__SNAPSHOT_REQUEST__INIT;
    Kpu__Link__V1__SnapshotCredit cr = KPU__LINK__V1__SNAPSHOT_CREDIT__INIT;
    static uint8_t img[320 * 240 * 3], got[320 * 240 * 2];
    uint32_t total = 320 * 240 * 2, id = 0, received = 0;
    int chunks;

    /* A known camera image: pixel (x, y) = (x, y, x ^ y). */
    for (int y = 0; y < 240; y++)
        for (int x = 0; x < 320; x++) {
            uint8_t *p = img + (y * 320 + x) * 3;

            p[0] = (uint8_t)x;
            p[1] = (uint8_t)y;
            p[2] = (uint8_t)(x ^ y);
        }
    kfa_posix_camera_clear();
    ck_assert_int_eq(kfa_posix_camera_add(img, 320, 240), 0);
    r.format = KPU__LINK__V1__SNAPSHOT_FORMAT__SNAPSHOT_RGB565;
    r.credits = 3;
    ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_SNAPSHOT_REQUEST, &r.base)),
                     0);
    pump(10);
    /* Exactly the credited chunks, then the agent waits. */
    ck_assert_int_eq(count_type(KPU__LINK__V1__MSG_TYPE__MSG_SNAPSHOT_CHUNK), 3);
    for (;;) {
        for (int i = 0; i < rxn; i++) {
            Kpu__Link__V1__SnapshotChunk *c;

            if (rxq[i].type != KPU__LINK__V1__MSG_TYPE__MSG_SNAPSHOT_CHUNK || !rxq[i].m)
                continue;
            c = (Kpu__Link__V1__SnapshotChunk *)rxq[i].m;
            ck_assert_uint_eq(c->offset, received);
            ck_assert_uint_eq(c->total, total);
            ck_assert_uint_eq(c->width, 320);
            ck_assert_uint_le(c->data.len, 2048);
            ck_assert_uint_le(c->offset + c->data.len, total);
            memcpy(got + c->offset, c->data.data, c->data.len);
            received += (uint32_t)c->data.len;
            id = c->snapshot_id;
            protobuf_c_message_free_unpacked(rxq[i].m, NULL);
            rxq[i].m = NULL;
            rxq[i].type = 0;
        }
        if (received >= total)
            break;
        cr.snapshot_id = id;
        cr.credits = 5;
        send_msg(KPU__LINK__V1__MSG_TYPE__MSG_SNAPSHOT_CREDIT, &cr.base);
        pump(8);
        chunks = count_type(KPU__LINK__V1__MSG_TYPE__MSG_SNAPSHOT_CHUNK);
        ck_assert_int_le(chunks, 5);
    }
    ck_assert_uint_eq(received, total);
    /* Credit is never answered; the image is the camera's, little-endian RGB565. */
    ck_assert_int_eq(count_type(KPU__LINK__V1__MSG_TYPE__MSG_STATUS), 1);
    for (int i = 0; i < 320 * 240; i += 997) {
        const uint8_t *p = img + i * 3;
        uint16_t want = (uint16_t)((p[0] >> 3) << 11 | (p[1] >> 2) << 5 | (p[2] >> 3));

        ck_assert_uint_eq(got[2 * i] | got[2 * i + 1] << 8, want);
    }
    /* Bad format. */
    r.format = 5;
    ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_SNAPSHOT_REQUEST, &r.base)),
                     KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
}
END_TEST

START_TEST(snapshot_interleaves_with_detections)
{
    size_t len, mlen;
    uint8_t *man = NULL;
    uint8_t *model = face_model(&len, &man, &mlen);
    Kpu__Link__V1__SnapshotRequest r = KPU__LINK__V1__SNAPSHOT_REQUEST__INIT;
    int first_chunk = -1, last_chunk = -1, between = 0;

    if (!model)
        return;
    ck_assert_int_eq(upload("face", model, len, man, mlen), 0);
    ck_assert_int_eq(stream(1), 0);
    r.format = KPU__LINK__V1__SNAPSHOT_FORMAT__SNAPSHOT_RGB888_PLANAR;
    r.credits = 1000;
    ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_SNAPSHOT_REQUEST, &r.base)),
                     0);
    pump(6);
    for (int i = 0; i < rxn; i++)
        if (rxq[i].type == KPU__LINK__V1__MSG_TYPE__MSG_SNAPSHOT_CHUNK) {
            if (first_chunk < 0)
                first_chunk = i;
            last_chunk = i;
        }
    ck_assert_int_ge(first_chunk, 0);
    for (int i = first_chunk; i < last_chunk; i++)
        between += rxq[i].type == KPU__LINK__V1__MSG_TYPE__MSG_DETECTION_FRAME;
    ck_assert_int_ge(between, 3);
    free(model);
    free(man);
}
END_TEST

/* ---- reset, baud ---------------------------------------------------------------------- */

static sigjmp_buf reset_jump;

START_TEST(reset_replies_then_resets)
{
    Kpu__Link__V1__Reset r = KPU__LINK__V1__RESET__INIT;
    volatile uint16_t seq = 0;
    volatile int step = 0;
    int jumped;

    kfa_posix_set_reset_jump(&reset_jump);
    jumped = sigsetjmp(reset_jump, 1);
    if (jumped == 0) {
        r.mode = 9;
        ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_RESET, &r.base)),
                         KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
        r.mode = KPU__LINK__V1__RESET_MODE__RESET_ISP;
        seq = send_msg(KPU__LINK__V1__MSG_TYPE__MSG_RESET, &r.base);
        step = 1;
        pump(3);
        ck_abort_msg("no reset");
    }
    ck_assert_int_eq(step, 1);
    ck_assert_int_eq(jumped, 2); /* ISP */
    ck_assert_uint_eq(kfa_posix_resets(), 1);
    collect();
    ck_assert_int_eq(status_of(seq), 0); /* the reply went out before the reset */
    boot();
    ck_assert_int_eq(
        ((Kpu__Link__V1__AgentHello *)last_of(KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO)->m)
            ->reset_cause,
        KPU__LINK__V1__RESET_CAUSE__RESET_CAUSE_SOFTWARE);
}
END_TEST

START_TEST(set_baud)
{
    Kpu__Link__V1__SetBaud b = KPU__LINK__V1__SET_BAUD__INIT;

    b.baud = 0;
    ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_SET_BAUD, &b.base)),
                     KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    ck_assert_uint_eq(kfa_posix_last_baud(), 0);
    b.baud = 1500000;
    ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_SET_BAUD, &b.base)), 0);
    ck_assert_uint_eq(kfa_posix_last_baud(), 1500000);
}
END_TEST

/* ---- POSIX HAL fault injection ----------------------------------------------------- */

START_TEST(fault_spec_parsing)
{
    ck_assert_int_eq(kfa_posix_set_fault("drop=0.5,corrupt=0.01,dup=0,garbage=1"), 0);
    ck_assert_int_eq(kfa_posix_set_fault("stall=100@3,reboot-after=10,silent-after=20"), 0);
    ck_assert_int_eq(kfa_posix_set_fault(""), 0);
    ck_assert_int_eq(kfa_posix_set_fault("drop=2"), -1);
    ck_assert_int_eq(kfa_posix_set_fault("stall=100"), -1);
    ck_assert_int_eq(kfa_posix_set_fault("bogus=1"), -1);
    ck_assert_int_eq(kfa_posix_set_fault("drop"), -1);
}
END_TEST

START_TEST(fault_corrupt_and_silent)
{
    Kpu__Link__V1__HostHello hh = KPU__LINK__V1__HOST_HELLO__INIT;
    int before;

    hh.protocol_major = 1;
    /* Every byte corrupted: the host sees no valid frame. */
    ck_assert_int_eq(kfa_posix_set_fault("corrupt=1"), 0);
    before = rxn;
    send_msg(KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO, &hh.base);
    pump(3);
    ck_assert_int_eq(rxn, before);
    ck_assert_uint_gt(hdec.stats.crc_errors + hdec.stats.malformed, 0);
    /* A corrupted delimiter leaves the host mid-frame: it resynchronises. */
    klink_decoder_reset(&hdec);
    /* Silent after one frame. */
    ck_assert_int_eq(kfa_posix_set_fault("silent-after=1"), 0);
    send_msg(KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO, &hh.base);
    send_msg(KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO, &hh.base);
    pump(3);
    ck_assert_int_eq(rxn, before + 1);
    /* Garbage before every frame (a wrong baud rate): the host throws bytes away; once
     * the fault is gone the link works again. */
    ck_assert_int_eq(kfa_posix_set_fault("garbage=1"), 0);
    before = (int)hdec.stats.bytes_discarded;
    for (int i = 0; i < 5; i++)
        send_msg(KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO, &hh.base);
    pump(3);
    ck_assert_int_gt((int)hdec.stats.bytes_discarded, before);
    ck_assert_int_eq(kfa_posix_set_fault(""), 0);
    klink_decoder_reset(&hdec);
    ck_assert_int_eq(reply_to(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO, &hh.base))->type,
                     KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO);
}
END_TEST

START_TEST(fault_reboot_after)
{
    Kpu__Link__V1__HostHello hh = KPU__LINK__V1__HOST_HELLO__INIT;
    volatile int armed = 0;

    hh.protocol_major = 1;
    kfa_posix_set_reset_jump(&reset_jump);
    if (sigsetjmp(reset_jump, 1) == 0) {
        ck_assert_int_eq(kfa_posix_set_fault("reboot-after=2"), 0);
        armed = 1;
        for (int i = 0; i < 3; i++)
            send_msg(KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO, &hh.base);
        pump(3);
        ck_abort_msg("no reboot");
    }
    ck_assert(armed);
    boot();
    ck_assert_int_eq(
        ((Kpu__Link__V1__AgentHello *)last_of(KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO)->m)
            ->reset_cause,
        KPU__LINK__V1__RESET_CAUSE__RESET_CAUSE_WATCHDOG);
}
END_TEST

START_TEST(flash_file_backed)
{
    char path[] = "/tmp/kfa-flash-XXXXXX";
    int fd = mkstemp(path);
    Kpu__Link__V1__Configure c = KPU__LINK__V1__CONFIGURE__INIT;

    ck_assert_int_ge(fd, 0);
    close(fd);
    unlink(path);
    ck_assert_int_eq(kfa_posix_flash_use_file(path, 2u * 1024u * 1024u), 0);
    ck_assert_uint_eq(kfa_hal_flash_size(), 2u * 1024u * 1024u);
    boot();
    c.threshold = 0.42f;
    c.persist = 1;
    ck_assert_int_eq(status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_CONFIGURE, &c.base)), 0);
    /* Reopen the file: the configuration is on "flash". */
    ck_assert_int_eq(kfa_posix_flash_use_ram(FLASH_SIZE), 0);
    ck_assert_int_eq(kfa_posix_flash_use_file(path, 0), 0);
    boot();
    ck_assert_float_eq(config_get()->threshold, 0.42f);
    unlink(path);
}
END_TEST

/* ---- agent boot image (ImageWrite*) ---------------------------------------------- */

/* A boot image as the K210 ROM reads it (usb-bridges.md §1.6 item 7): flag 0, u32 LE
 * length, the firmware, SHA-256 of all that. Digest by OpenSSL. Caller frees. */
static uint8_t *boot_image(size_t fw_len, uint32_t seed, size_t *len)
{
    uint8_t *img = malloc(fw_len + 37);

    ck_assert_ptr_nonnull(img);
    img[0] = 0;
    img[1] = (uint8_t)fw_len, img[2] = (uint8_t)(fw_len >> 8);
    img[3] = (uint8_t)(fw_len >> 16), img[4] = (uint8_t)(fw_len >> 24);
    for (size_t i = 0; i < fw_len; i++) {
        seed = seed * 1103515245u + 12345u;
        img[5 + i] = (uint8_t)(seed >> 16);
    }
    SHA256(img, fw_len + 5, img + 5 + fw_len);
    *len = fw_len + 37;
    return img;
}

static uint32_t image_begin(size_t size, uint32_t crc, int *code)
{
    Kpu__Link__V1__ImageWriteBegin b = KPU__LINK__V1__IMAGE_WRITE_BEGIN__INIT;
    Kpu__Link__V1__ModelUploadState *st;

    b.size = (uint32_t)size;
    b.crc32c = crc;
    st = up_state(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_IMAGE_WRITE_BEGIN, &b.base));
    *code = st->code;
    return st->upload_id;
}

static int image_chunk(uint32_t id, uint32_t off, const uint8_t *data, size_t n, uint32_t *next)
{
    return chunk_of(KPU__LINK__V1__MSG_TYPE__MSG_IMAGE_WRITE_CHUNK, id, off, data, n, next);
}

static int image_commit(uint32_t id)
{
    Kpu__Link__V1__ImageWriteCommit c = KPU__LINK__V1__IMAGE_WRITE_COMMIT__INIT;

    c.upload_id = id;
    return status_of(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_IMAGE_WRITE_COMMIT, &c.base));
}

/* Send img (announcing crc) in 2 KiB chunks and commit. The commit's status. */
static int image_write(const uint8_t *img, size_t len, uint32_t crc)
{
    uint32_t next = 0, id;
    int code;

    id = image_begin(len, crc, &code);
    if (code != 0)
        return code;
    code = send_rest(KPU__LINK__V1__MSG_TYPE__MSG_IMAGE_WRITE_CHUNK, id, img, len, &next);
    return code != 0 ? code : image_commit(id);
}

/* The whole test flash as it is now (the image slot and the store). Caller frees. */
static uint8_t *flash_copy(void)
{
    uint8_t *f = malloc(FLASH_SIZE);

    ck_assert_ptr_nonnull(f);
    memcpy(f, kfa_posix_flash_ptr(), FLASH_SIZE);
    return f;
}

START_TEST(image_write_programs_slot_and_keeps_store)
{
    size_t ilen, len;
    uint8_t *iris = data_file("models/iris_fc.kmodel", &ilen);
    uint8_t *img = boot_image(70001, 7, &len), *before;
    Kpu__Link__V1__AgentHello *h;
    Kpu__Link__V1__ModelList *l;

    if (!iris)
        return;
    h = (Kpu__Link__V1__AgentHello *)last_of(KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO)->m;
    ck_assert(h->features & KPU__LINK__V1__FEATURE__FEATURE_IMAGE_WRITE);
    ck_assert_int_eq(upload("iris", iris, ilen, NULL, 0), 0);
    ck_assert_int_eq(simple_name_req(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_SELECT, "iris"), 0);
    before = flash_copy();
    ck_assert_int_eq(image_write(img, len, klink_crc32c(0, img, len)), 0);
    /* Exactly the image at 0, the rest of its sectors erased, everything after untouched. */
    ck_assert_mem_eq(kfa_posix_flash_ptr(), img, len);
    for (size_t i = len; i < (len + 4095) / 4096 * 4096; i++)
        ck_assert_uint_eq(kfa_posix_flash_ptr()[i], 0xff);
    ck_assert_mem_eq(kfa_posix_flash_ptr() + KFA_STORE_IMAGE_RESERVE,
                     before + KFA_STORE_IMAGE_RESERVE, FLASH_SIZE - KFA_STORE_IMAGE_RESERVE);
    /* The model came back and the store is intact, also after a reboot. */
    ck_assert(kfa_agent_model_loaded());
    boot();
    l = model_list();
    ck_assert_ptr_nonnull(listed(l, "iris"));
    ck_assert(listed(l, "iris")->selected);
    ck_assert_mem_eq(kfa_posix_flash_ptr(), img, len);
    free(before);
    free(img);
    free(iris);
}
END_TEST

START_TEST(image_write_refusals_leave_flash_alone)
{
    size_t len, big_len;
    uint8_t *img = boot_image(5000, 9, &len), *old = boot_image(3000, 1, &big_len), *before;
    uint32_t crc = klink_crc32c(0, img, len), id, next;
    int code;

    ck_assert_int_eq(image_write(old, big_len, klink_crc32c(0, old, big_len)), 0);
    before = flash_copy();
    /* Wrong CRC announced. */
    ck_assert_int_eq(image_write(img, len, crc ^ 1u),
                     KPU__LINK__V1__STATUS_CODE__STATUS_CRC_MISMATCH);
    /* SHA-256 trailer wrong (CRC right for the bytes sent). */
    img[len - 1] ^= 0x55;
    ck_assert_int_eq(image_write(img, len, klink_crc32c(0, img, len)),
                     KPU__LINK__V1__STATUS_CODE__STATUS_CRC_MISMATCH);
    ck_assert_ptr_nonnull(strstr(last_text, "SHA-256"));
    img[len - 1] ^= 0x55;
    /* Encrypted flag. */
    img[0] = 1;
    ck_assert_int_eq(image_write(img, len, klink_crc32c(0, img, len)),
                     KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    img[0] = 0;
    /* Length field inconsistent. */
    img[1] ^= 1;
    ck_assert_int_eq(image_write(img, len, klink_crc32c(0, img, len)),
                     KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    img[1] ^= 1;
    /* Too small, too large for the 1 MiB slot. */
    (void)image_begin(20, 0, &code);
    ck_assert_int_eq(code, KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    (void)image_begin(KFA_STORE_IMAGE_RESERVE + 1, 0, &code);
    ck_assert_int_eq(code, KPU__LINK__V1__STATUS_CODE__STATUS_NO_SPACE);
    /* Out-of-order chunk, chunk past the end, commit before the end. */
    id = image_begin(len, crc, &code);
    ck_assert_int_eq(code, 0);
    ck_assert_int_eq(image_chunk(id, 0, img, 2048, &next), 0);
    ck_assert_int_eq(image_chunk(id, 4096, img, 100, &next),
                     KPU__LINK__V1__STATUS_CODE__STATUS_BAD_OFFSET);
    ck_assert_uint_eq(next, 2048);
    ck_assert_int_eq(image_chunk(id, 0, img, 2048, &next), 0); /* retransmission */
    ck_assert_uint_eq(next, 2048);
    ck_assert_int_eq(image_commit(id), KPU__LINK__V1__STATUS_CODE__STATUS_BAD_OFFSET);
    ck_assert_int_eq(image_commit(id + 7), KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    /* A new handshake abandons it: its chunks are refused afterwards. */
    {
        Kpu__Link__V1__HostHello hh = KPU__LINK__V1__HOST_HELLO__INIT;
        hh.protocol_major = 1;
        (void)reply_to(send_msg(KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO, &hh.base));
    }
    ck_assert_int_eq(image_chunk(id, 2048, img, 2048, &next),
                     KPU__LINK__V1__STATUS_CODE__STATUS_BAD_REQUEST);
    ck_assert_mem_eq(kfa_posix_flash_ptr(), before, FLASH_SIZE);
    free(before);
    free(img);
    free(old);
}
END_TEST

START_TEST(image_write_holds_model_ram)
{
    size_t ilen, len;
    uint8_t *iris = data_file("models/iris_fc.kmodel", &ilen);
    uint8_t *img = boot_image(9000, 3, &len);
    uint32_t id, next;
    int code;

    if (!iris)
        return;
    ck_assert_int_eq(upload("iris", iris, ilen, NULL, 0), 0);
    id = image_begin(len, klink_crc32c(0, img, len), &code);
    ck_assert_int_eq(code, 0);
    ck_assert(!kfa_agent_model_loaded());
    /* Models cannot take the RAM back while the image is staged. */
    ck_assert_int_eq(simple_name_req(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_SELECT, "iris"),
                     KPU__LINK__V1__STATUS_CODE__STATUS_BUSY);
    ck_assert_int_eq(upload("iris2", iris, ilen, NULL, 0), KPU__LINK__V1__STATUS_CODE__STATUS_BUSY);
    /* A Begin with the same size and CRC resumes where it stopped. */
    ck_assert_int_eq(image_chunk(id, 0, img, 2048, &next), 0);
    ck_assert_int_eq(image_chunk(id, 2048, img, 2048, &next), 0);
    ck_assert_uint_eq(image_begin(len, klink_crc32c(0, img, len), &code), id);
    ck_assert_int_eq(code, 0);
    ck_assert_uint_eq(up_state((uint16_t)(host_seq - 1))->next_offset, 4096);
    ck_assert_int_eq(send_rest(KPU__LINK__V1__MSG_TYPE__MSG_IMAGE_WRITE_CHUNK, id, img, len, &next),
                     0);
    ck_assert_int_eq(image_commit(id), 0);
    ck_assert_int_eq(image_commit(id), 0); /* a retried commit: answered, not redone */
    ck_assert_int_eq(simple_name_req(KPU__LINK__V1__MSG_TYPE__MSG_MODEL_SELECT, "iris"), 0);
    free(img);
    free(iris);
}
END_TEST

START_TEST(image_write_power_cut)
{
    size_t ilen, len;
    uint8_t *iris = data_file("models/iris_fc.kmodel", &ilen);
    uint8_t *img = boot_image(12000, 5, &len);

    if (!iris)
        return;
    ck_assert_int_eq(upload("iris", iris, ilen, NULL, 0), 0);
    /* Power fails between erase and the end of programming: the commit reports a flash
     * error; after power returns the model store is intact and a new write succeeds. */
    kfa_posix_flash_cut_after(2);
    ck_assert_int_eq(image_write(img, len, klink_crc32c(0, img, len)),
                     KPU__LINK__V1__STATUS_CODE__STATUS_FLASH_ERROR);
    kfa_posix_flash_cut_after(-1);
    boot();
    ck_assert_ptr_nonnull(kfa_store_find("iris"));
    check_store_consistent();
    ck_assert_int_eq(image_write(img, len, klink_crc32c(0, img, len)), 0);
    ck_assert_mem_eq(kfa_posix_flash_ptr(), img, len);
    free(img);
    free(iris);
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *t;

    t = tcase_create("link");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, boot_sends_hello);
    tcase_add_test(t, hello_reply_and_uid_from_seed);
    tcase_add_test(t, heartbeat_every_second_when_connected);
    tcase_add_test(t, unknown_and_wrong_types);
    tcase_add_test(t, undecodable_payloads);
    tcase_add_test(t, garbage_and_truncated_frames);
    tcase_add_test(t, closed_link_ends_poll);
    tcase_add_test(t, reset_replies_then_resets);
    tcase_add_test(t, set_baud);
    suite_add_tcase(s, t);

    t = tcase_create("config");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, configure_valid_and_get);
    tcase_add_loop_test(t, configure_invalid, 0, (int)(sizeof(bad_cfgs) / sizeof(bad_cfgs[0])));
    tcase_add_test(t, configure_persist_survives_reboot);
    suite_add_tcase(s, t);

    t = tcase_create("store");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, upload_list_select_delete);
    tcase_add_test(t, upload_bad_crc_and_invalid_model);
    tcase_add_test(t, upload_resume_after_interruption);
    tcase_add_test(t, power_cut_at_every_flash_step);
    tcase_add_test(t, power_cut_during_delete_and_select);
    tcase_add_test(t, store_full);
    suite_add_tcase(s, t);

    t = tcase_create("image");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, image_write_programs_slot_and_keeps_store);
    tcase_add_test(t, image_write_refusals_leave_flash_alone);
    tcase_add_test(t, image_write_holds_model_ram);
    tcase_add_test(t, image_write_power_cut);
    suite_add_tcase(s, t);

    t = tcase_create("pipeline");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, stream_face_detections);
    tcase_add_test(t, stream_roi_and_max_boxes);
    tcase_add_test(t, fps_cap_paces_frames);
    tcase_add_test(t, snapshot_with_credits);
    tcase_add_test(t, snapshot_interleaves_with_detections);
    suite_add_tcase(s, t);

    t = tcase_create("hal_posix");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, fault_spec_parsing);
    tcase_add_test(t, fault_corrupt_and_silent);
    tcase_add_test(t, fault_reboot_after);
    tcase_add_test(t, flash_file_backed);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(core_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
