/* SPDX-License-Identifier: MIT */
/*
 * Integration-test harness: run the real kpud and kpu-agent-sim as child processes in a
 * private temporary directory, and observe them through the real SQLite file (and, in the
 * client tests, the real socket). Waiting is always for a condition with a deadline,
 * never a fixed sleep.
 */
#ifndef KPU_TESTS_HARNESS_H
#define KPU_TESTS_HARNESS_H

#include <stdint.h>
#include <sys/types.h>

/* Paths configured by CMake (compile definitions) and the test data folder. */
const char *h_kpud(void);      /* built kpud */
const char *h_agent_sim(void); /* built kpu-agent-sim */
const char *h_data(void);      /* $KPU_TEST_DATA */

/*
 * h_need_data - 1 if path under the data folder exists. If not: under CI=true the test
 * fails, otherwise it prints a skip message and returns 0 (the caller returns).
 */
int h_need_data(const char *relpath);

/* h_tmpdir - a fresh private directory for this test (removed by h_cleanup). */
const char *h_tmpdir(void);

/* h_path - "<tmpdir>/<name>" in a static rotating buffer. */
const char *h_path(const char *name);

/* h_datapath - "<data>/<rel>" in a static rotating buffer. */
const char *h_datapath(const char *rel);

/* h_spawn - start argv (NULL-terminated) with stdout and stderr appended to log (may be
 * NULL for inherited). Returns the pid; aborts the test on failure. */
pid_t h_spawn(char *const argv[], const char *log);

/*
 * h_kpud_sim - start kpud with its state in <tmpdir>/state, its socket at
 * <tmpdir>/kpud.sock, no configuration file, and one simulated board showing image (a path
 * under the data folder) through model (likewise); extra (NULL-terminated, may be NULL, at
 * most 24) is appended. Log: <tmpdir>/kpud.log. Returns the pid.
 */
pid_t h_kpud_sim(const char *image, const char *model, const char *const *extra);

/* h_assert_db_sound - the SQLite file at db passes integrity_check, stores no frame twice
 * within a session and no detection without its frame. */
void h_assert_db_sound(const char *db);

/* h_spawn_pipe - start argv with stdout to a pipe; *out_fd gets its read end. */
pid_t h_spawn_pipe(char *const argv[], const char *log, int *out_fd);

/* h_read_line - read one line from fd within timeout_ms into buf. Returns its length or
 * -1 on timeout / EOF. */
int h_read_line(int fd, char *buf, size_t cap, int timeout_ms);

/* h_stop - SIGTERM, then wait up to timeout_ms. Returns the exit status, or -1 if it had to
 * be killed (it then is). */
int h_stop(pid_t pid, int timeout_ms);

/* h_kill9 - SIGKILL and reap. */
void h_kill9(pid_t pid);

/* h_alive - 1 while pid has not exited (reaps it when it has; *status gets the status). */
int h_alive(pid_t pid, int *status);

/* h_db_int - the first column of the first row of sql on the database at path as an
 * integer; -1 if the database or table is not there yet. Opens read-only each time. */
int64_t h_db_int(const char *db, const char *sql);

/* h_db_text - like h_db_int for text; copies into out, returns 0 or -1. */
int h_db_text(const char *db, const char *sql, char *out, size_t cap);

/* h_wait_db - poll sql every 20 ms until its value is >= min or timeout_ms passes.
 * Returns the last value. */
int64_t h_wait_db(const char *db, const char *sql, int64_t min, int timeout_ms);

/* h_file_contains - 1 if the file contains needle. */
int h_file_contains(const char *path, const char *needle);

/* h_wait_file - poll until path contains needle or timeout_ms passes; 1 if it does. */
int h_wait_file(const char *path, const char *needle, int timeout_ms);

/* h_cleanup - remove the temporary directory (call from a teardown). */
void h_cleanup(void);

#endif
