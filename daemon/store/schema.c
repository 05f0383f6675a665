/* SPDX-License-Identifier: MIT */
/*
 * The store's schema as an ordered list of migration steps. Step N turns a database at
 * PRAGMA user_version N-1 into version N; a new file runs them all. Steps are never edited
 * once released: a change is a new step appended to the list (docs/store.md "Migrations").
 * Times are integer Unix epoch nanoseconds throughout.
 */
#include <errno.h>
#include <stdio.h>

#include "store_internal.h"

/* Version 1: devices, sessions, frames, detections, device events, and their indexes. */
static const char schema_v1[] =
    "CREATE TABLE devices ("
    " id TEXT PRIMARY KEY NOT NULL," /* chip uid as hex */
    " board TEXT, transport TEXT, path TEXT,"
    " first_seen_ns INTEGER NOT NULL, last_seen_ns INTEGER NOT NULL);"
    "CREATE TABLE sessions ("
    " id INTEGER PRIMARY KEY,"
    " device_id TEXT NOT NULL REFERENCES devices(id),"
    " start_ns INTEGER NOT NULL, end_ns INTEGER,"
    " agent_version TEXT, model TEXT, reset_cause TEXT,"
    " frames INTEGER NOT NULL DEFAULT 0, frames_lost INTEGER NOT NULL DEFAULT 0,"
    " link_errors INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX sessions_device_start ON sessions(device_id, start_ns);"
    "CREATE TABLE frames ("
    " id INTEGER PRIMARY KEY,"
    " session_id INTEGER REFERENCES sessions(id),"
    " device_id TEXT NOT NULL REFERENCES devices(id),"
    " frame_seq INTEGER NOT NULL, device_time_us INTEGER NOT NULL, time_ns INTEGER NOT NULL,"
    " model TEXT, image_w INTEGER, image_h INTEGER, kpu_us INTEGER,"
    " n_boxes INTEGER NOT NULL);"
    "CREATE INDEX frames_time ON frames(time_ns);"
    "CREATE INDEX frames_device_time ON frames(device_id, time_ns);"
    "CREATE INDEX frames_session ON frames(session_id);"
    /* device_id and time_ns repeat the frame's so time/class/device queries need no join
     * to filter; the frame reference cascades so retention can delete by frame. */
    "CREATE TABLE detections ("
    " id INTEGER PRIMARY KEY,"
    " frame_id INTEGER NOT NULL REFERENCES frames(id) ON DELETE CASCADE,"
    " device_id TEXT NOT NULL, time_ns INTEGER NOT NULL,"
    " class_id INTEGER NOT NULL, label TEXT, score REAL NOT NULL,"
    " x INTEGER NOT NULL, y INTEGER NOT NULL, w INTEGER NOT NULL, h INTEGER NOT NULL);"
    "CREATE INDEX detections_time ON detections(time_ns);"
    "CREATE INDEX detections_frame ON detections(frame_id);"
    "CREATE INDEX detections_device_time ON detections(device_id, time_ns);"
    "CREATE INDEX detections_class_time ON detections(class_id, time_ns);"
    "CREATE TABLE device_events ("
    " id INTEGER PRIMARY KEY,"
    " device_id TEXT NOT NULL REFERENCES devices(id),"
    " time_ns INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT);"
    "CREATE INDEX device_events_time ON device_events(time_ns);"
    "CREATE INDEX device_events_device_time ON device_events(device_id, time_ns);";

/* Version 2: the models table and label + time queries. */
static const char schema_v2[] =
    "CREATE TABLE models ("
    " name TEXT PRIMARY KEY NOT NULL, size INTEGER NOT NULL, crc32c INTEGER NOT NULL,"
    " sha256 TEXT, manifest TEXT, added_ns INTEGER NOT NULL);"
    "CREATE INDEX detections_label_time ON detections(label, time_ns);";

/* migrations[i] takes a database from version i to i + 1. */
static const char *const migrations[] = {schema_v1, schema_v2};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == KPUD_STORE_SCHEMA_VERSION,
               "one migration step per schema version");

static int user_version(sqlite3 *db, int *ret)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *ret = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

int kpud_store__migrate(sqlite3 *db, int target, char **errmsg)
{
    int cur = 0, rc;

    if (errmsg)
        *errmsg = NULL;
    if (target < 1 || target > KPUD_STORE_SCHEMA_VERSION)
        return -EINVAL;
    rc = user_version(db, &cur);
    if (rc != SQLITE_OK) {
        if (errmsg)
            *errmsg = sqlite3_mprintf("reading user_version: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    if (cur > target)
        return -EPROTO;
    for (int v = cur; v < target; v++) {
        char *msg = NULL;
        char *sql = sqlite3_mprintf("BEGIN IMMEDIATE; %s PRAGMA user_version = %d; COMMIT;",
                                    migrations[v], v + 1);

        if (!sql)
            return -ENOMEM;
        /* The whole step and its version bump commit together or not at all. */
        rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
        sqlite3_free(sql);
        if (rc != SQLITE_OK) {
            if (!sqlite3_get_autocommit(db))
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            if (errmsg)
                *errmsg = sqlite3_mprintf("migration to version %d: %s", v + 1,
                                          msg ? msg : sqlite3_errstr(rc));
            sqlite3_free(msg);
            return -EIO;
        }
    }
    return 0;
}
