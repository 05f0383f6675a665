/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the store's unit and integration tests: temporary directories, a
 * deterministic frame generator, running a libuv loop until a flag is set, and small
 * SQLite look-ups used to check what reached the file independently of the store's own
 * read code.
 */
#ifndef CHECK_STORE_UTIL_H
#define CHECK_STORE_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf; include this header first */
#endif

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "store.h"

#define T_BASE_NS 1700000000000000000LL /* 2023-11-14, an arbitrary fixed epoch time */
#define T_STEP_NS 1000000LL             /* 1 ms between generated frames */
#define T_MAX_BOXES 4

static const char *const t_labels[3] = {"face", "person", "cat"};

/* Generated frame i: device alternates A/B, boxes = i % 4, deterministic box fields. */
struct t_frame {
    struct kpud_frame_rec rec;
    struct kpud_box_rec boxes[T_MAX_BOXES];
};

static inline const char *t_dev(uint32_t i)
{
    return (i % 2) ? "dev-b" : "dev-a";
}

static inline uint32_t t_nboxes(uint32_t i)
{
    return i % T_MAX_BOXES;
}

static inline void t_box(uint32_t i, uint32_t k, struct kpud_box_rec *b)
{
    b->class_id = (i + k) % 3;
    b->label = t_labels[b->class_id];
    b->score = (float)((i * 7 + k * 13) % 100) / 100.0f;
    b->x = (int32_t)((i * 3 + k) % 300);
    b->y = (int32_t)((i * 5 + k) % 200);
    b->w = 10 + k;
    b->h = 20 + k;
}

static inline void t_make_frame(struct t_frame *tf, uint32_t i, int64_t base_ns)
{
    memset(tf, 0, sizeof(*tf));
    tf->rec.device = t_dev(i);
    tf->rec.frame_seq = i;
    tf->rec.device_time_us = (uint64_t)i * 1000;
    tf->rec.host_time_ns = base_ns + (int64_t)i * T_STEP_NS;
    tf->rec.model = "facedetect";
    tf->rec.image_width = 320;
    tf->rec.image_height = 240;
    tf->rec.kpu_us = 12000 + i % 100;
    tf->rec.n_boxes = t_nboxes(i);
    for (uint32_t k = 0; k < tf->rec.n_boxes; k++)
        t_box(i, k, &tf->boxes[k]);
    tf->rec.boxes = tf->boxes;
}

static inline char *t_mkdtemp(void)
{
    char tmpl[] = "/tmp/kpud-store-XXXXXX";
    char *d = mkdtemp(tmpl);

    ck_assert_ptr_nonnull(d);
    return strdup(d);
}

static inline char *t_path(const char *dir, const char *name)
{
    char *p = NULL;

    ck_assert_int_gt(asprintf(&p, "%s/%s", dir, name), 0);
    return p;
}

static inline void t_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d))) {
        char *p;

        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        p = t_path(dir, e->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Run the loop until *flag is true (Check's timeout catches a hang). */
static inline void t_run_until(uv_loop_t *loop, const bool *flag)
{
    while (!*flag)
        uv_run(loop, UV_RUN_ONCE);
}

/* Close the store and let the loop release it. */
static inline int t_close(uv_loop_t *loop, struct kpud_store *s)
{
    int r = kpud_store_close(s);

    uv_run(loop, UV_RUN_DEFAULT);
    return r;
}

/* One integer from SQL on a fresh connection to path (-1 on error). */
static inline int64_t t_sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v = -1;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

static inline void t_sql_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    char *msg = NULL;

    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        ck_abort_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static inline char *t_sql_text(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char *v = NULL;

    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            v = strdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

#endif /* CHECK_STORE_UTIL_H */
