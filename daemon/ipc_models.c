/* SPDX-License-Identifier: MIT */
/*
 * Model requests of the IPC backend (see ipc_models.h).
 *
 * An upload is buffered whole in kpud: IPC chunks may be far larger than the link's
 * 2048-byte ModelUploadChunk bound, and the file must be checked as a kmodel (the same
 * kfa_kmodel_load() the agent runs) before any byte goes to the board. On commit kpud
 * sends ModelUploadBegin, the chunks one at a time (each answered by ModelUploadState,
 * whose next_offset is the agent's resume point) and ModelUploadCommit, then records the
 * model and its manifest in the store and in <state_dir>/models/<name>.ini (where the
 * device manager finds labels). A commit that fails on the way (timeout, board gone)
 * keeps the buffer: the same upload begun again resumes at its end, and committing again
 * resumes on the board where the agent stopped.
 */
#include "ipc_models.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "klink.h"
#include "kmodel/kmodel.h"
#include "log.h"
#include "manifest.h"

#define P(name) KPU__IPC__V1__STATUS_CODE__##name
#define L(name) KPU__LINK__V1__STATUS_CODE__STATUS_##name

#define LINK_RESYNCS 8        /* BAD_OFFSET answers followed before giving up */
#define MODEL_NAME_MAX 31u    /* docs/agent.md: [A-Za-z0-9._-]{1,31} */
#define LIST_MAX_ENTRIES 512u /* models in one ListModels answer */

struct upload {
    struct kpud_models *owner;
    uint32_t id; /* 0 = free slot */
    char device[40];
    char name[MODEL_NAME_MAX + 1];
    uint32_t size, crc, received;
    char *manifest; /* NUL-terminated, may be "" */
    uint8_t *buf;
    uint64_t touched_ms;
    /* The link transfer, while committing. */
    int committing;
    struct kpud_ipc_request *commit_req;
    uint32_t link_id, link_off;
    int resyncs;
};

struct kpud_models {
    uv_loop_t *loop;
    const struct kpud_config *cfg;
    struct kpud_store *store;
    struct kpud_devices *devs;
    struct upload up[KPUD_UPLOADS_MAX];
    uint32_t next_id;
};

static void reply_body(struct kpud_ipc_request *req, Kpu__Ipc__V1__Frame__BodyCase c, void *msg)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    f.body_case = c;
    /* Every member of the body oneof is a message pointer at the same offset. */
    f.model_list = msg;
    kpud_ipc_reply(req, &f);
}

void kpud_models_reply_error(struct kpud_ipc_request *req, const char *what, int err,
                             int agent_code, const char *agent_text)
{
    char text[200];
    Kpu__Ipc__V1__StatusCode code = P(DEVICE_ERROR);
    const char *hint = NULL;

    if (err == -EREMOTEIO) {
        snprintf(text, sizeof(text), "%s: the board refused: %s", what,
                 agent_text && *agent_text ? agent_text : "no reason given");
        switch (agent_code) {
        case L(BAD_REQUEST):
        case L(MODEL_INVALID):
            code = P(INVALID_ARGUMENT);
            break;
        case L(BUSY):
            code = P(BUSY);
            hint = "try again shortly";
            break;
        case L(NO_SUCH_MODEL):
            code = P(NO_SUCH_MODEL);
            hint = "kpuctl model list shows the stored models";
            break;
        case L(NO_SPACE):
            code = P(LIMIT_EXCEEDED);
            hint = "remove a model from the board first (kpuctl model remove)";
            break;
        case L(CAMERA_ERROR):
            hint = "check the camera cable; kpuctl reset restarts the board";
            break;
        default:
            break;
        }
        kpud_ipc_reply_status(req, code, text, hint);
        return;
    }
    switch (err) {
    case -ETIMEDOUT:
        code = P(TIMEOUT);
        snprintf(text, sizeof(text), "%s: the board did not answer in time", what);
        hint = "kpuctl devices shows the board's state; kpuctl reset restarts it";
        break;
    case -ENOTCONN:
        code = P(DEVICE_OFFLINE);
        snprintf(text, sizeof(text), "%s: the board is not connected", what);
        hint = "wait until kpuctl devices shows it streaming";
        break;
    case -ECONNRESET:
        snprintf(text, sizeof(text), "%s: the board restarted meanwhile", what);
        hint = "try again";
        break;
    case -ECANCELED:
        code = P(DEVICE_OFFLINE);
        snprintf(text, sizeof(text), "%s: kpud is stopping", what);
        break;
    case -EBUSY:
        code = P(BUSY);
        snprintf(text, sizeof(text), "%s: the board has too many requests in flight", what);
        hint = "try again shortly";
        break;
    case -ENOMEM:
        code = P(INTERNAL);
        snprintf(text, sizeof(text), "%s: out of memory", what);
        break;
    default:
        snprintf(text, sizeof(text), "%s: %s", what, strerror(-err));
        break;
    }
    kpud_ipc_reply_status(req, code, text, hint);
}

struct kpud_session *kpud_ipc_find_device(struct kpud_devices *devs, struct kpud_ipc_request *req,
                                          const char *id)
{
    struct kpud_session *s = devs ? kpud_devices_find(devs, id) : NULL;
    char text[160];

    if (!s) {
        snprintf(text, sizeof(text), "no device '%.64s'", id && *id ? id : "(default)");
        kpud_ipc_reply_status(req, P(NO_SUCH_DEVICE), text,
                              id && *id ? "kpuctl devices lists the connected boards"
                                        : "name the device: several are connected");
    }
    return s;
}

static struct kpud_session *find_device(struct kpud_models *m, struct kpud_ipc_request *req,
                                        const char *id)
{
    return kpud_ipc_find_device(m->devs, req, id);
}

static int name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > MODEL_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return name[0] != '.';
}

static int link_status_ok(int status, uint8_t type, const ProtobufCMessage *msg, int *err,
                          int *code, const char **text)
{
    const Kpu__Link__V1__Status *st = (const Kpu__Link__V1__Status *)msg;

    *code = 0;
    *text = "";
    if (status < 0) {
        *err = status;
        return 0;
    }
    if (type != KPU__LINK__V1__MSG_TYPE__MSG_STATUS) {
        *err = -EPROTO;
        return 0;
    }
    if (st->code != L(OK)) {
        *err = -EREMOTEIO;
        *code = (int)st->code;
        *text = st->text ? st->text : "";
        return 0;
    }
    *err = 0;
    return 1;
}

/* ---- ListModels --------------------------------------------------------------------- */

struct list_entry {
    char name[MODEL_NAME_MAX + 1];
    uint32_t size, crc;
    char *manifest;
    char **devices;
    size_t n_devices;
    char **selected;
    size_t n_selected;
};

struct list_ctx {
    struct kpud_models *m;
    struct kpud_ipc_request *req;
    int outstanding;
    int named; /* one device asked for: its errors are the answer */
    int err;   /* the named device's error */
    int agent_code;
    char agent_text[100];
    int oom;
    struct list_entry *e;
    size_t n;
};

static struct list_entry *list_entry(struct list_ctx *c, const char *name, uint32_t crc)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].crc == crc && strcmp(c->e[i].name, name) == 0)
            return &c->e[i];
    if (c->n == LIST_MAX_ENTRIES)
        return NULL;
    memset(&c->e[c->n], 0, sizeof(c->e[c->n]));
    snprintf(c->e[c->n].name, sizeof(c->e[c->n].name), "%s", name);
    c->e[c->n].crc = crc;
    return &c->e[c->n++];
}

static int strv_add(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(**v));
    if (!nv)
        return -1;
    *v = nv;
    nv[*n] = strdup(s);
    if (!nv[*n])
        return -1;
    (*n)++;
    return 0;
}

static void list_free(struct list_ctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        for (size_t k = 0; k < c->e[i].n_devices; k++)
            free(c->e[i].devices[k]);
        for (size_t k = 0; k < c->e[i].n_selected; k++)
            free(c->e[i].selected[k]);
        free(c->e[i].devices);
        free(c->e[i].selected);
        free(c->e[i].manifest);
    }
    free(c->e);
    free(c);
}

static void list_finish(struct list_ctx *c)
{
    Kpu__Ipc__V1__ModelList ml = KPU__IPC__V1__MODEL_LIST__INIT;
    Kpu__Ipc__V1__ModelInfo *infos = NULL, **ptrs = NULL;

    if (--c->outstanding > 0)
        return;
    if (c->named && c->err) {
        kpud_models_reply_error(c->req, "model list", c->err, c->agent_code, c->agent_text);
        list_free(c);
        return;
    }
    if (c->oom || (c->n && (!(infos = calloc(c->n, sizeof(*infos))) ||
                            !(ptrs = calloc(c->n, sizeof(*ptrs)))))) {
        free(infos);
        kpud_ipc_reply_status(c->req, P(INTERNAL), "out of memory", NULL);
        list_free(c);
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        kpu__ipc__v1__model_info__init(&infos[i]);
        infos[i].name = c->e[i].name;
        infos[i].size = c->e[i].size;
        infos[i].crc32c = c->e[i].crc;
        infos[i].manifest = c->e[i].manifest ? c->e[i].manifest : (char *)"";
        infos[i].devices = c->e[i].devices;
        infos[i].n_devices = c->e[i].n_devices;
        infos[i].selected_on = c->e[i].selected;
        infos[i].n_selected_on = c->e[i].n_selected;
        ptrs[i] = &infos[i];
    }
    ml.models = ptrs;
    ml.n_models = c->n;
    reply_body(c->req, KPU__IPC__V1__FRAME__BODY_MODEL_LIST, &ml);
    free(infos);
    free(ptrs);
    list_free(c);
}

static void list_device_done(struct kpud_session *s, int status, uint8_t type,
                             const ProtobufCMessage *msg, void *user)
{
    struct list_ctx *c = user;
    const Kpu__Link__V1__ModelList *ml = (const Kpu__Link__V1__ModelList *)msg;
    struct kpud_session_info info;

    if (status < 0 || type != KPU__LINK__V1__MSG_TYPE__MSG_MODEL_LIST_REPLY) {
        c->err = status < 0 ? status : -EREMOTEIO;
        if (status == 0 && type == KPU__LINK__V1__MSG_TYPE__MSG_STATUS) {
            const Kpu__Link__V1__Status *st = (const Kpu__Link__V1__Status *)msg;
            c->agent_code = (int)st->code;
            snprintf(c->agent_text, sizeof(c->agent_text), "%s", st->text ? st->text : "");
        }
        list_finish(c);
        return;
    }
    kpud_session_get_info(s, &info);
    for (size_t i = 0; i < ml->n_models; i++) {
        const Kpu__Link__V1__StoredModel *sm = ml->models[i];
        struct list_entry *e;
        if (!sm->name || !name_ok(sm->name))
            continue; /* names come from the board: keep to the agent's own rule */
        e = list_entry(c, sm->name, sm->crc32c);
        if (!e)
            break;
        e->size = sm->size;
        if (strv_add(&e->devices, &e->n_devices, info.id) < 0 ||
            (sm->selected && strv_add(&e->selected, &e->n_selected, info.id) < 0))
            c->oom = 1;
    }
    list_finish(c);
}

static void list_store_done(struct kpud_store *s, int status, const struct kpud_model_rec *rows,
                            size_t n, void *user)
{
    struct list_ctx *c = user;

    (void)s;
    if (status == 0) {
        for (size_t i = 0; i < n; i++) {
            struct list_entry *e = list_entry(c, rows[i].name, rows[i].crc32c);
            if (!e)
                break;
            e->size = (uint32_t)rows[i].size;
            if (rows[i].manifest && !e->manifest && !(e->manifest = strdup(rows[i].manifest)))
                c->oom = 1;
        }
    } else {
        log_warn("models: the store's models table could not be read: %s", strerror(-status));
    }
    list_finish(c);
}

static void list_models(struct kpud_models *m, struct kpud_ipc_request *req,
                        const Kpu__Ipc__V1__ListModels *q)
{
    Kpu__Link__V1__ModelListRequest lr = KPU__LINK__V1__MODEL_LIST_REQUEST__INIT;
    struct list_ctx *c = calloc(1, sizeof(*c));
    unsigned nd;

    if (c)
        c->e = calloc(LIST_MAX_ENTRIES, sizeof(*c->e));
    if (!c || !c->e) {
        free(c);
        kpud_ipc_reply_status(req, P(INTERNAL), "out of memory", NULL);
        return;
    }
    c->m = m;
    c->req = req;
    c->outstanding = 1; /* held until every request is out */
    if (q->device && *q->device) {
        struct kpud_session *s = find_device(m, req, q->device);
        int r;
        if (!s) {
            list_free(c);
            return;
        }
        c->named = 1;
        c->outstanding++;
        r = kpud_session_request(s, KPU__LINK__V1__MSG_TYPE__MSG_MODEL_LIST, &lr.base,
                                 list_device_done, c);
        if (r < 0) {
            c->err = r;
            c->outstanding--;
        }
    } else {
        nd = kpud_devices_count(m->devs);
        for (unsigned i = 0; i < nd; i++) {
            c->outstanding++;
            if (kpud_session_request(kpud_devices_at(m->devs, i),
                                     KPU__LINK__V1__MSG_TYPE__MSG_MODEL_LIST, &lr.base,
                                     list_device_done, c) < 0)
                c->outstanding--; /* offline boards are simply not listed */
        }
        /* Errors of single boards do not fail a listing of all of them. */
        c->named = 0;
    }
    if (m->store) {
        c->outstanding++;
        if (kpud_store_models(m->store, list_store_done, c) < 0)
            c->outstanding--;
    }
    list_finish(c);
}

/* ---- uploads ------------------------------------------------------------------------ */

static void upload_clear(struct upload *u)
{
    struct kpud_models *owner = u->owner;
    free(u->buf);
    free(u->manifest);
    memset(u, 0, sizeof(*u));
    u->owner = owner;
}

static struct upload *upload_by_id(struct kpud_models *m, uint32_t id)
{
    for (unsigned i = 0; i < KPUD_UPLOADS_MAX; i++)
        if (id && m->up[i].id == id)
            return &m->up[i];
    return NULL;
}

static void reply_upload_state(struct kpud_ipc_request *req, const struct upload *u)
{
    Kpu__Ipc__V1__UploadState us = KPU__IPC__V1__UPLOAD_STATE__INIT;
    us.upload_id = u->id;
    us.next_offset = u->received;
    us.size = u->size;
    reply_body(req, KPU__IPC__V1__FRAME__BODY_UPLOAD_STATE, &us);
}

static void upload_begin(struct kpud_models *m, struct kpud_ipc_request *req,
                         const Kpu__Ipc__V1__ModelUploadBegin *b)
{
    const char *manifest = b->manifest ? b->manifest : "";
    size_t mlen = strlen(manifest);
    struct kpud_session *s;
    struct kpud_session_info info;
    struct upload *u = NULL, *same = NULL, *oldest = NULL;
    uint64_t now = uv_now(m->loop);
    char text[300];

    if (!name_ok(b->name)) {
        kpud_ipc_reply_status(req, P(INVALID_ARGUMENT),
                              "model name must be 1 to 31 letters, digits, '.', '_' or '-'",
                              "e.g. face-v2");
        return;
    }
    if (b->size == 0 || b->size > KPUD_MODEL_MAX_BYTES) {
        snprintf(text, sizeof(text), "model size %u bytes is out of range (1 to %u)", b->size,
                 KPUD_MODEL_MAX_BYTES);
        kpud_ipc_reply_status(req, P(INVALID_ARGUMENT), text,
                              "a K210 runs models of up to about 5.9 MiB");
        return;
    }
    if (mlen > KPUD_MANIFEST_MAX_BYTES) {
        snprintf(text, sizeof(text), "manifest of %zu bytes is too long (at most %u)", mlen,
                 KPUD_MANIFEST_MAX_BYTES);
        kpud_ipc_reply_status(req, P(INVALID_ARGUMENT), text,
                              "drop comments from the manifest (docs/models.md)");
        return;
    }
    if (mlen) {
        struct kfa_manifest *mf = malloc(sizeof(*mf));
        struct kfa_manifest_error merr;
        int r;
        if (!mf) {
            kpud_ipc_reply_status(req, P(INTERNAL), "out of memory", NULL);
            return;
        }
        memset(&merr, 0, sizeof(merr));
        r = kfa_manifest_parse_string(manifest, mlen, "manifest", mf, &merr);
        free(mf);
        if (r < 0) {
            snprintf(text, sizeof(text), "the manifest does not parse: %s", merr.text);
            kpud_ipc_reply_status(req, P(INVALID_ARGUMENT), text,
                                  "docs/models.md describes the manifest format");
            return;
        }
    }
    s = find_device(m, req, b->device);
    if (!s)
        return;
    kpud_session_get_info(s, &info);
    for (unsigned i = 0; i < KPUD_UPLOADS_MAX; i++) {
        struct upload *x = &m->up[i];
        if (!x->id) {
            if (!u)
                u = x;
            continue;
        }
        if (strcmp(x->device, info.id) == 0 && strcmp(x->name, b->name) == 0)
            same = x;
        else if (!x->committing && now - x->touched_ms >= KPUD_UPLOAD_IDLE_MS &&
                 (!oldest || x->touched_ms < oldest->touched_ms))
            oldest = x;
    }
    if (same && same->size == b->size && same->crc == b->crc32c &&
        strcmp(same->manifest, manifest) == 0) {
        same->touched_ms = now; /* resume */
        reply_upload_state(req, same);
        return;
    }
    if (same && same->committing) {
        kpud_ipc_reply_status(req, P(BUSY), "this model is being written to the board",
                              "wait for the commit to finish");
        return;
    }
    if (same) {
        upload_clear(same); /* a different file under the same name starts over */
        u = same;
    }
    if (!u)
        u = oldest;
    if (!u) {
        kpud_ipc_reply_status(req, P(LIMIT_EXCEEDED), "too many uploads in progress",
                              "finish or abandon another upload (they expire after 5 minutes)");
        return;
    }
    upload_clear(u);
    u->buf = malloc(b->size);
    u->manifest = strdup(manifest);
    if (!u->buf || !u->manifest) {
        upload_clear(u);
        kpud_ipc_reply_status(req, P(INTERNAL), "out of memory", NULL);
        return;
    }
    if (++m->next_id == 0)
        m->next_id = 1;
    u->id = m->next_id;
    snprintf(u->device, sizeof(u->device), "%s", info.id);
    snprintf(u->name, sizeof(u->name), "%s", b->name);
    u->size = b->size;
    u->crc = b->crc32c;
    u->touched_ms = now;
    reply_upload_state(req, u);
}

static void upload_chunk(struct kpud_models *m, struct kpud_ipc_request *req,
                         const Kpu__Ipc__V1__ModelUploadChunk *c)
{
    struct upload *u = upload_by_id(m, c->upload_id);
    char text[160];

    if (!u) {
        kpud_ipc_reply_status(req, P(NOT_FOUND), "no such upload",
                              "begin the upload again: an unfinished one resumes");
        return;
    }
    if (u->committing) {
        kpud_ipc_reply_status(req, P(BUSY), "this upload is being committed", NULL);
        return;
    }
    if (c->offset != u->received || c->data.len > u->size - u->received || c->data.len == 0) {
        snprintf(text, sizeof(text), "chunk of %zu bytes at offset %u; expected offset %u of %u",
                 c->data.len, c->offset, u->received, u->size);
        kpud_ipc_reply_status(req, P(INVALID_ARGUMENT), text,
                              "begin the upload again to learn where to resume");
        return;
    }
    memcpy(u->buf + u->received, c->data.data, c->data.len);
    u->received += (uint32_t)c->data.len;
    u->touched_ms = uv_now(m->loop);
    reply_upload_state(req, u);
}

/* The manifest beside the models the device manager looks labels up in. */
static void save_manifest(struct kpud_models *m, const struct upload *u)
{
    char dir[PATH_MAX], path[PATH_MAX + 64], tmp[PATH_MAX + 80];
    FILE *f;

    if (!u->manifest[0])
        return;
    snprintf(dir, sizeof(dir), "%.*s/models", PATH_MAX - 16, m->cfg->state_dir);
    if (mkdir(dir, 0750) < 0 && errno != EEXIST)
        goto fail;
    snprintf(path, sizeof(path), "%s/%s.ini", dir, u->name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        goto fail;
    if (fputs(u->manifest, f) < 0 || fclose(f) != 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        goto fail;
    }
    return;
fail:
    log_warn("model %s: manifest not saved under %s: %s", u->name, dir, strerror(errno));
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* End the link transfer of u: answer the commit; on success forget the upload. */
static void commit_end(struct kpud_models *m, struct upload *u, int err, int agent_code,
                       const char *agent_text)
{
    struct kpud_ipc_request *req = u->commit_req;
    char text[160];

    u->committing = 0;
    u->commit_req = NULL;
    u->touched_ms = uv_now(m->loop);
    if (err) {
        log_warn("model %s: upload to %s failed: %s%s%s", u->name, u->device,
                 err == -EREMOTEIO ? "" : strerror(-err), err == -EREMOTEIO ? "agent: " : "",
                 agent_text ? agent_text : "");
        if (err == -EREMOTEIO && (agent_code == L(CRC_MISMATCH) || agent_code == L(MODEL_INVALID)))
            upload_clear(u); /* the board refused the file itself: resuming cannot help */
        kpud_models_reply_error(req, "model upload", err, agent_code, agent_text);
        return;
    }
    if (m->store) {
        struct kpud_model_rec rec;
        memset(&rec, 0, sizeof(rec));
        rec.name = u->name;
        rec.size = u->size;
        rec.crc32c = u->crc;
        rec.manifest = u->manifest[0] ? u->manifest : NULL;
        rec.added_ns = wall_ns();
        if (kpud_store_model_put(m->store, &rec) < 0)
            log_warn("model %s: not recorded in the store", u->name);
    }
    save_manifest(m, u);
    log_notice("model %s (%u bytes) stored on %s", u->name, u->size, u->device);
    snprintf(text, sizeof(text), "model %s stored on %s", u->name, u->device);
    upload_clear(u);
    kpud_ipc_reply_status(req, P(OK), text, NULL);
}

static struct kpud_session *upload_session(struct kpud_models *m, const struct upload *u)
{
    return m->devs ? kpud_devices_find(m->devs, u->device) : NULL;
}

static void link_step(struct upload *u);

static void link_commit_done(struct kpud_session *s, int status, uint8_t type,
                             const ProtobufCMessage *msg, void *user)
{
    struct upload *u = user;
    int err, code;
    const char *text;

    (void)s;
    link_status_ok(status, type, msg, &err, &code, &text);
    commit_end(u->owner, u, err, code, text);
}

/* A ModelUploadState answer (to Begin or Chunk): move on from the agent's next_offset. */
static void link_state_done(struct kpud_session *s, int status, uint8_t type,
                            const ProtobufCMessage *msg, void *user)
{
    struct upload *u = user;
    const Kpu__Link__V1__ModelUploadState *st = (const Kpu__Link__V1__ModelUploadState *)msg;

    (void)s;
    if (status < 0) {
        commit_end(u->owner, u, status, 0, "");
        return;
    }
    if (type == KPU__LINK__V1__MSG_TYPE__MSG_STATUS) {
        /* An agent that refuses the message type or its payload answers Status. */
        const Kpu__Link__V1__Status *ss = (const Kpu__Link__V1__Status *)msg;
        commit_end(u->owner, u, -EREMOTEIO, (int)ss->code, ss->text);
        return;
    }
    if (type != KPU__LINK__V1__MSG_TYPE__MSG_MODEL_UPLOAD_STATE) {
        commit_end(u->owner, u, -EPROTO, 0, "");
        return;
    }
    if (st->code == L(BAD_OFFSET) && st->upload_id == u->link_id && u->resyncs < LINK_RESYNCS &&
        st->next_offset <= u->size) {
        /* A retransmitted chunk, or a resumed upload: carry on where the agent is. */
        u->resyncs++;
        u->link_off = st->next_offset;
        link_step(u);
        return;
    }
    if (st->code != L(OK)) {
        commit_end(u->owner, u, -EREMOTEIO, (int)st->code, st->text);
        return;
    }
    if (st->next_offset > u->size || (u->link_id && st->upload_id != u->link_id)) {
        commit_end(u->owner, u, -EREMOTEIO, L(INTERNAL), "upload state out of step");
        return;
    }
    u->link_id = st->upload_id;
    u->link_off = st->next_offset;
    link_step(u);
}

/* Send what comes next: a chunk from link_off, or the commit once the agent has it all. */
static void link_step(struct upload *u)
{
    struct kpud_session *s = upload_session(u->owner, u);
    int r;

    if (!s) {
        commit_end(u->owner, u, -ENOTCONN, 0, "");
        return;
    }
    if (u->link_off >= u->size) {
        Kpu__Link__V1__ModelUploadCommit c = KPU__LINK__V1__MODEL_UPLOAD_COMMIT__INIT;
        c.upload_id = u->link_id;
        r = kpud_session_request(s, KPU__LINK__V1__MSG_TYPE__MSG_MODEL_UPLOAD_COMMIT, &c.base,
                                 link_commit_done, u);
    } else {
        Kpu__Link__V1__ModelUploadChunk c = KPU__LINK__V1__MODEL_UPLOAD_CHUNK__INIT;
        uint32_t n =
            u->size - u->link_off < KPUD_LINK_CHUNK ? u->size - u->link_off : KPUD_LINK_CHUNK;
        c.upload_id = u->link_id;
        c.offset = u->link_off;
        c.data.data = u->buf + u->link_off;
        c.data.len = n;
        r = kpud_session_request(s, KPU__LINK__V1__MSG_TYPE__MSG_MODEL_UPLOAD_CHUNK, &c.base,
                                 link_state_done, u);
    }
    if (r < 0)
        commit_end(u->owner, u, r, 0, "");
}

static void upload_commit(struct kpud_models *m, struct kpud_ipc_request *req,
                          const Kpu__Ipc__V1__ModelUploadCommit *c)
{
    Kpu__Link__V1__ModelUploadBegin b = KPU__LINK__V1__MODEL_UPLOAD_BEGIN__INIT;
    struct upload *u = upload_by_id(m, c->upload_id);
    struct kfa_kmodel km;
    struct kfa_kmodel_error kerr;
    struct kpud_session *s;
    char text[300];
    int r;

    if (!u) {
        kpud_ipc_reply_status(req, P(NOT_FOUND), "no such upload", "upload the file again");
        return;
    }
    if (u->committing) {
        kpud_ipc_reply_status(req, P(BUSY), "this upload is already being committed", NULL);
        return;
    }
    if (u->received != u->size) {
        snprintf(text, sizeof(text), "upload incomplete: %u of %u bytes received", u->received,
                 u->size);
        kpud_ipc_reply_status(req, P(INVALID_ARGUMENT), text, "send the remaining chunks first");
        return;
    }
    if (klink_crc32c(0, u->buf, u->size) != u->crc) {
        upload_clear(u);
        kpud_ipc_reply_status(req, P(INVALID_ARGUMENT),
                              "CRC-32C of the data received does not match the one announced",
                              "upload the file again");
        return;
    }
    /* The agent's own check, here first: a bad file never reaches the board. */
    memset(&kerr, 0, sizeof(kerr));
    r = kfa_kmodel_load(&km, u->buf, u->size, &kerr);
    if (r < 0) {
        snprintf(text, sizeof(text), "'%s' is not a usable kmodel: %s", u->name,
                 kerr.text[0] ? kerr.text : "the loader refused it");
        upload_clear(u);
        kpud_ipc_reply_status(req, P(INVALID_ARGUMENT), text,
                              "kpuctl model inspect FILE shows what the file is; kpud runs "
                              "kmodel v3 files (nncase 0.1, MaixPy)");
        return;
    }
    s = upload_session(m, u);
    if (!s) {
        kpud_ipc_reply_status(req, P(NO_SUCH_DEVICE), "the upload's device is gone",
                              "kpuctl devices lists the connected boards");
        return;
    }
    u->committing = 1;
    u->commit_req = req;
    u->link_id = 0;
    u->link_off = 0;
    u->resyncs = 0;
    b.name = u->name;
    b.size = u->size;
    b.crc32c = u->crc;
    b.manifest.data = (uint8_t *)u->manifest;
    b.manifest.len = strlen(u->manifest);
    r = kpud_session_request(s, KPU__LINK__V1__MSG_TYPE__MSG_MODEL_UPLOAD_BEGIN, &b.base,
                             link_state_done, u);
    if (r < 0)
        commit_end(m, u, r, 0, "");
}

/* ---- select and delete -------------------------------------------------------------- */

struct name_ctx {
    struct kpud_models *m;
    struct kpud_ipc_request *req;
    char name[MODEL_NAME_MAX + 1];
    int forget; /* delete: also drop the store row */
};

static void select_done(struct kpud_session *s, int status, uint8_t type,
                        const ProtobufCMessage *msg, void *user)
{
    struct name_ctx *c = user;
    int err, code;
    const char *text;
    char out[120];

    if (!link_status_ok(status, type, msg, &err, &code, &text)) {
        kpud_models_reply_error(c->req, "model select", err, code, text);
    } else {
        kpud_session_note_model(s, c->name);
        if (c->m->devs)
            kpud_devices_model_selected(c->m->devs, s, c->name);
        snprintf(out, sizeof(out), "model %s selected", c->name);
        kpud_ipc_reply_status(c->req, P(OK), out, NULL);
    }
    free(c);
}

static void delete_done(struct kpud_session *s, int status, uint8_t type,
                        const ProtobufCMessage *msg, void *user)
{
    struct name_ctx *c = user;
    int err, code;
    const char *text;
    char out[120];

    (void)s;
    if (!link_status_ok(status, type, msg, &err, &code, &text)) {
        if (err == -EREMOTEIO && code == L(BUSY))
            kpud_ipc_reply_status(c->req, P(BUSY), "the model is running on the board",
                                  "select another model first (kpuctl model select)");
        else
            kpud_models_reply_error(c->req, "model remove", err, code, text);
    } else {
        if (c->forget && c->m->store && kpud_store_model_delete(c->m->store, c->name) < 0)
            log_warn("model %s: store row not deleted", c->name);
        snprintf(out, sizeof(out), "model %s removed", c->name);
        kpud_ipc_reply_status(c->req, P(OK), out, NULL);
    }
    free(c);
}

static void name_request(struct kpud_models *m, struct kpud_ipc_request *req, const char *device,
                         const char *name, int is_delete)
{
    Kpu__Link__V1__ModelSelect sel = KPU__LINK__V1__MODEL_SELECT__INIT;
    Kpu__Link__V1__ModelDelete del = KPU__LINK__V1__MODEL_DELETE__INIT;
    struct kpud_session *s;
    struct name_ctx *c;
    int r;

    if (!name_ok(name)) {
        kpud_ipc_reply_status(req, P(INVALID_ARGUMENT),
                              "model name must be 1 to 31 letters, digits, '.', '_' or '-'",
                              "kpuctl model list shows the stored models");
        return;
    }
    s = find_device(m, req, device);
    if (!s)
        return;
    c = calloc(1, sizeof(*c));
    if (!c) {
        kpud_ipc_reply_status(req, P(INTERNAL), "out of memory", NULL);
        return;
    }
    c->m = m;
    c->req = req;
    snprintf(c->name, sizeof(c->name), "%s", name);
    /* A delete that names no device removes the model everywhere kpud knows it. */
    c->forget = is_delete && !(device && *device);
    sel.name = c->name;
    del.name = c->name;
    if (is_delete)
        r = kpud_session_request(s, KPU__LINK__V1__MSG_TYPE__MSG_MODEL_DELETE, &del.base,
                                 delete_done, c);
    else
        r = kpud_session_request(s, KPU__LINK__V1__MSG_TYPE__MSG_MODEL_SELECT, &sel.base,
                                 select_done, c);
    if (r < 0) {
        free(c);
        kpud_models_reply_error(req, is_delete ? "model remove" : "model select", r, 0, "");
    }
}

/* ---- entry points ------------------------------------------------------------------- */

struct kpud_models *kpud_models_new(uv_loop_t *loop, const struct kpud_config *cfg)
{
    struct kpud_models *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->loop = loop;
    m->cfg = cfg;
    for (unsigned i = 0; i < KPUD_UPLOADS_MAX; i++)
        m->up[i].owner = m;
    return m;
}

void kpud_models_attach(struct kpud_models *m, struct kpud_store *store, struct kpud_devices *devs)
{
    m->store = store;
    m->devs = devs;
}

int kpud_models_request(struct kpud_models *m, struct kpud_ipc_request *req,
                        const Kpu__Ipc__V1__Frame *f)
{
    switch (f->body_case) {
    case KPU__IPC__V1__FRAME__BODY_LIST_MODELS:
        list_models(m, req, f->list_models);
        return 1;
    case KPU__IPC__V1__FRAME__BODY_MODEL_UPLOAD_BEGIN:
        upload_begin(m, req, f->model_upload_begin);
        return 1;
    case KPU__IPC__V1__FRAME__BODY_MODEL_UPLOAD_CHUNK:
        upload_chunk(m, req, f->model_upload_chunk);
        return 1;
    case KPU__IPC__V1__FRAME__BODY_MODEL_UPLOAD_COMMIT:
        upload_commit(m, req, f->model_upload_commit);
        return 1;
    case KPU__IPC__V1__FRAME__BODY_SELECT_MODEL:
        name_request(m, req, f->select_model->device, f->select_model->name, 0);
        return 1;
    case KPU__IPC__V1__FRAME__BODY_DELETE_MODEL:
        name_request(m, req, f->delete_model->device, f->delete_model->name, 1);
        return 1;
    default:
        return 0;
    }
}

void kpud_models_free(struct kpud_models *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < KPUD_UPLOADS_MAX; i++)
        upload_clear(&m->up[i]);
    free(m);
}
