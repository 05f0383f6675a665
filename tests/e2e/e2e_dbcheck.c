/* SPDX-License-Identifier: MIT */
/*
 * e2e_dbcheck: prints what kpud stored, one line per device, for the e2e guest to show on
 * its console: "DB device=<id> transport=<kind> path=<path> sessions=N frames=N
 * detections=N link_errors=N frames_lost=N" (the last two summed over the device's
 * sessions, as kpud last wrote them). Read-only; safe while kpud runs (WAL).
 * usage: e2e_dbcheck DB
 */
#include <sqlite3.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    const char *sql = "SELECT d.id, d.transport, d.path,"
                      " (SELECT count(*) FROM sessions s WHERE s.device_id = d.id),"
                      " (SELECT count(*) FROM frames f WHERE f.device_id = d.id),"
                      " (SELECT count(*) FROM detections x WHERE x.device_id = d.id),"
                      " (SELECT total(s.link_errors) FROM sessions s WHERE s.device_id = d.id),"
                      " (SELECT total(s.frames_lost) FROM sessions s WHERE s.device_id = d.id)"
                      " FROM devices d ORDER BY d.id";

    if (argc < 2 || sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        printf("DB cannot open\n");
        return 1;
    }
    sqlite3_busy_timeout(db, 2000);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        printf("DB query error: %s\n", sqlite3_errmsg(db));
        sqlite3_close(db);
        return 1;
    }
    while (sqlite3_step(st) == SQLITE_ROW)
        printf("DB device=%s transport=%s path=%s sessions=%d frames=%d detections=%d "
               "link_errors=%lld frames_lost=%lld\n",
               sqlite3_column_text(st, 0), sqlite3_column_text(st, 1), sqlite3_column_text(st, 2),
               sqlite3_column_int(st, 3), sqlite3_column_int(st, 4), sqlite3_column_int(st, 5),
               (long long)sqlite3_column_int64(st, 6), (long long)sqlite3_column_int64(st, 7));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}
