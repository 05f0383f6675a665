/* SPDX-License-Identifier: MIT */
/*
 * The store's models table, read side: kpud_store_models() lists the models the daemon
 * knows (uploaded through it, with their manifests) for ListModels. Runs on the libuv
 * thread pool on a read-only connection, like the detection queries in read.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

struct models_work {
    uv_work_t req;
    struct kpud_store *s;
    kpud_store_models_cb cb;
    void *user_data;
    int status;
    struct kpud_model_rec *rows;
    size_t n_rows;
};

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

static void rows_free(struct kpud_model_rec *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free((char *)rows[i].name);
        free((char *)rows[i].sha256);
        free((char *)rows[i].manifest);
    }
    free(rows);
}

static void models_run(uv_work_t *req)
{
    struct models_work *w = req->data;
    sqlite3 *db = kpud_store__reader_get(w->s);
    sqlite3_stmt *st = NULL;
    int rc;

    if (!db) {
        w->status = -EIO;
        return;
    }
    w->rows = calloc(KPUD_STORE_MODELS_MAX, sizeof(*w->rows));
    if (!w->rows) {
        w->status = -ENOMEM;
        goto out_put;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT name, size, crc32c, sha256, manifest, added_ns FROM models "
                           "ORDER BY name LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK) {
        w->status = -EIO;
        goto out_put;
    }
    sqlite3_bind_int(st, 1, KPUD_STORE_MODELS_MAX);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct kpud_model_rec *r = &w->rows[w->n_rows];
        r->name = col_dup(st, 0);
        r->size = (uint64_t)sqlite3_column_int64(st, 1);
        r->crc32c = (uint32_t)sqlite3_column_int64(st, 2);
        r->sha256 = col_dup(st, 3);
        r->manifest = col_dup(st, 4);
        r->added_ns = sqlite3_column_int64(st, 5);
        w->n_rows++;
        if (!r->name) {
            w->status = -ENOMEM;
            break;
        }
    }
    if (w->status == 0 && rc != SQLITE_DONE)
        w->status = -EIO;
    sqlite3_finalize(st);
out_put:
    kpud_store__reader_put(w->s, db);
}

static void models_done(uv_work_t *req, int status)
{
    struct models_work *w = req->data;
    struct kpud_store *s = w->s;

    if (status == UV_ECANCELED || s->closing)
        w->status = -ECANCELED;
    w->cb(s, w->status, w->status == 0 ? w->rows : NULL, w->status == 0 ? w->n_rows : 0,
          w->user_data);
    rows_free(w->rows, w->n_rows);
    free(w);
    kpud_store__work_done(s);
}

int kpud_store_models(struct kpud_store *s, kpud_store_models_cb cb, void *user_data)
{
    struct models_work *w;

    if (!s || !cb)
        return -EINVAL;
    if (s->closing)
        return -ESHUTDOWN;
    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->s = s;
    w->cb = cb;
    w->user_data = user_data;
    w->req.data = w;
    if (uv_queue_work(s->loop, &w->req, models_run, models_done) < 0) {
        free(w);
        return -ENOMEM;
    }
    kpud_store__work_begin(s);
    return 0;
}
