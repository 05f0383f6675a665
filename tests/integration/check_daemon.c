/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of the device side: the real kpud with the real kpu-agent-sim (over
 * the socketpair of the sim transport and over a pty through the tty transport), the real
 * face model and images, and the real SQLite file. Also every fault kpu-agent-sim can
 * inject, kill -9 during ingest, and a bad configuration.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define FACE_MODEL "models/maixpy_facedetect_320x240.kmodel"
#define ASTRONAUT "images/astronaut_320x240.png"
#define TWO_FACES "images/two_faces_320x240.jpg"
#define WAIT_MS 60000 /* generous: the emulated KPU shares two cores with other tests */

static void teardown(void)
{
    h_cleanup();
}

/* Start kpud on a simulated board with extra arguments; returns the pid. */
static pid_t start_kpud(const char *image, const char *const *extra)
{
    return h_kpud_sim(image, FACE_MODEL, extra);
}

static const char *db(void)
{
    return h_path("state/kpud.db");
}

/* IoU of a stored box against (x, y, w, h). */
static double iou(int64_t x, int64_t y, int64_t w, int64_t h, int ex, int ey, int ew, int eh)
{
    double ix = (double)((x + w < ex + ew ? x + w : ex + ew) - (x > ex ? x : ex));
    double iy = (double)((y + h < ey + eh ? y + h : ey + eh) - (y > ey ? y : ey));
    double inter = ix > 0 && iy > 0 ? ix * iy : 0;
    return inter / ((double)(w * h) + (double)(ew * eh) - inter);
}

/* Every stored detection is the astronaut's face: (109,31)-(173,117) per the model .md. */
static void assert_all_boxes_are_the_face(void)
{
    char sql[256];
    int64_t n = h_db_int(db(), "SELECT count(*) FROM detections");
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM detections WHERE label <> 'face'"), 0);
    /* Check a sample of rows exactly, all rows by a bounding test. */
    for (int64_t id = 1; id <= n; id += (n / 7) + 1) {
        int64_t x, y, w, h;
        snprintf(sql, sizeof(sql), "SELECT x FROM detections WHERE id = %lld", (long long)id);
        x = h_db_int(db(), sql);
        snprintf(sql, sizeof(sql), "SELECT y FROM detections WHERE id = %lld", (long long)id);
        y = h_db_int(db(), sql);
        snprintf(sql, sizeof(sql), "SELECT w FROM detections WHERE id = %lld", (long long)id);
        w = h_db_int(db(), sql);
        snprintf(sql, sizeof(sql), "SELECT h FROM detections WHERE id = %lld", (long long)id);
        h = h_db_int(db(), sql);
        ck_assert_msg(iou(x, y, w, h, 109, 31, 64, 86) >= 0.8,
                      "detection %lld at (%lld,%lld %lldx%lld) is not the face", (long long)id,
                      (long long)x, (long long)y, (long long)w, (long long)h);
    }
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM detections WHERE score < 0.9 OR "
                                    "x < 95 OR x > 125 OR y < 15 OR y > 45"),
                     0);
}

static void assert_db_consistent(void)
{
    h_assert_db_sound(db());
}

START_TEST(sim_streams_face_into_sqlite)
{
    pid_t pid;
    if (!h_need_data(FACE_MODEL) || !h_need_data(ASTRONAUT))
        return;
    pid = start_kpud(ASTRONAUT, NULL);
    ck_assert_int_ge(h_wait_db(db(), "SELECT count(*) FROM frames", 20, WAIT_MS), 20);
    ck_assert_int_eq(h_stop(pid, 20000), 0);
    assert_all_boxes_are_the_face();
    assert_db_consistent();
    /* One device, identified by its chip uid, one closed session with matching counters. */
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM devices"), 1);
    ck_assert_int_eq(h_db_int(db(), "SELECT length(id) FROM devices"), 32);
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM sessions WHERE end_ns IS NULL"), 0);
    ck_assert_int_eq(h_db_int(db(), "SELECT sum(frames) FROM sessions"),
                     h_db_int(db(), "SELECT count(*) FROM frames"));
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM device_events WHERE state = "
                                    "'streaming'"),
                     1);
    ck_assert(h_file_contains(h_path("kpud.log"), "streaming"));
}
END_TEST

START_TEST(sim_two_faces_two_boxes)
{
    pid_t pid;
    if (!h_need_data(FACE_MODEL) || !h_need_data(TWO_FACES))
        return;
    pid = start_kpud(TWO_FACES, NULL);
    ck_assert_int_ge(h_wait_db(db(), "SELECT count(*) FROM frames", 10, WAIT_MS), 10);
    ck_assert_int_eq(h_stop(pid, 20000), 0);
    /* Every frame of this picture has exactly the two faces. */
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM frames WHERE n_boxes <> 2"), 0);
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM detections"),
                     2 * h_db_int(db(), "SELECT count(*) FROM frames"));
    assert_db_consistent();
}
END_TEST

START_TEST(tty_transport_over_a_pty)
{
    char line[256];
    int out;
    pid_t sim, kpud;
    char *sim_argv[] = {(char *)h_agent_sim(),
                        "serve",
                        "--pty",
                        "--image",
                        (char *)h_datapath(ASTRONAUT),
                        "--model",
                        (char *)h_datapath(FACE_MODEL),
                        "--manifest",
                        KPU_TEST_MODELS_DIR "/maixpy_facedetect_320x240.ini",
                        "--fps",
                        "30",
                        NULL};

    if (!h_need_data(FACE_MODEL) || !h_need_data(ASTRONAUT))
        return;
    sim = h_spawn_pipe(sim_argv, h_path("sim.log"), &out);
    ck_assert_int_gt(h_read_line(out, line, sizeof(line), 20000), 0);
    ck_assert_msg(strncmp(line, "/dev/pts/", 9) == 0, "sim printed '%s'", line);
    {
        char *argv[] = {(char *)h_kpud(),
                        "--state-dir",
                        (char *)h_path("state"),
                        "--socket",
                        (char *)h_path("kpud.sock"),
                        "--config",
                        "/dev/null",
                        "--tty",
                        line,
                        "--baud",
                        "2000000",
                        NULL};
        kpud = h_spawn(argv, h_path("kpud.log"));
    }
    ck_assert_int_ge(h_wait_db(db(), "SELECT count(*) FROM frames", 15, WAIT_MS), 15);
    ck_assert_int_eq(h_stop(kpud, 20000), 0);
    h_stop(sim, 5000);
    close(out);
    assert_all_boxes_are_the_face();
    assert_db_consistent();
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM devices WHERE transport = 'tty'"), 1);
}
END_TEST

/* kpud --record from the start: the capture begins before the board has said who it is,
 * yet its header must carry the identity (rewritten in place after the handshake). */
START_TEST(record_from_start_names_the_board)
{
    static char rec_arg[600];
    const char *extra[] = {rec_arg, NULL};
    char hdr[1024], dev[64], want[128];
    uint8_t head[12];
    uint32_t len;
    FILE *f;
    pid_t pid;

    if (!h_need_data(FACE_MODEL) || !h_need_data(ASTRONAUT))
        return;
    snprintf(rec_arg, sizeof(rec_arg), "--record=%s", h_path("start.kcap"));
    pid = start_kpud(ASTRONAUT, extra);
    ck_assert_int_ge(h_wait_db(db(), "SELECT count(*) FROM frames", 3, WAIT_MS), 3);
    ck_assert_int_eq(h_stop(pid, 20000), 0);
    ck_assert_int_eq(h_db_text(db(), "SELECT id FROM devices", dev, sizeof(dev)), 0);
    f = fopen(h_path("start.kcap"), "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(head, 1, sizeof(head), f), sizeof(head));
    ck_assert_int_eq(memcmp(head, "KCAP", 4), 0);
    len = (uint32_t)head[8] | (uint32_t)head[9] << 8 | (uint32_t)head[10] << 16 |
          (uint32_t)head[11] << 24;
    ck_assert_uint_lt(len, sizeof(hdr));
    ck_assert_uint_eq(fread(hdr, 1, len, f), len);
    hdr[len] = 0;
    fclose(f);
    ck_assert_ptr_nonnull(strstr(hdr, "board=sim\n"));
    ck_assert_ptr_null(strstr(hdr, "agent_version=\n"));
    snprintf(want, sizeof(want), "device=%s\n", dev);
    ck_assert_msg(strstr(hdr, want) != NULL, "header has no '%s':\n%s", want, hdr);
}
END_TEST

/* Fault matrix: each kpu-agent-sim fault; the daemon survives, recovers, counts the loss
 * and stores only correct detections. */
struct fault_case {
    const char *spec;
    const char *recovered_sql; /* must reach >= 1 while running */
    const char *counted_sql;   /* after stop: must be >= 1 (the loss was counted) */
};

static const struct fault_case faults[] = {
    /* Corrupt bytes: CRC errors counted, frames keep coming. */
    {"corrupt=0.002", "SELECT count(*) >= 25 FROM frames", "SELECT sum(link_errors) FROM sessions"},
    /* Dropped bytes break frames: counted as link errors and sequence gaps. */
    {"drop=0.002", "SELECT count(*) >= 25 FROM frames",
     "SELECT sum(link_errors) + sum(frames_lost) FROM sessions"},
    /* Garbage between frames: skipped and counted. */
    {"garbage=0.01", "SELECT count(*) >= 25 FROM frames", "SELECT sum(link_errors) FROM sessions"},
    /* Duplicated bytes: frames with a bad CRC, or whole repeats that must not be stored
     * twice (assert_db_consistent checks). */
    {"dup=0.002", "SELECT count(*) >= 25 FROM frames", "SELECT sum(link_errors) FROM sessions"},
    /* The agent reboots: kpud re-handshakes (a second session). */
    {"reboot-after=15", "SELECT count(*) >= 2 FROM sessions", "SELECT count(*) - 1 FROM sessions"},
    /* The agent goes silent: kpud notices, resets the board (restarts the sim) and
     * re-handshakes. */
    {"silent-after=15", "SELECT count(*) >= 2 FROM sessions",
     "SELECT count(*) FROM device_events WHERE state = 'backoff'"},
    /* A stall longer than the heartbeat timeout: same recovery as silence. */
    {"stall=6000@10", "SELECT count(*) >= 2 FROM sessions",
     "SELECT count(*) FROM device_events WHERE reason = 'agent silent'"},
};

START_TEST(fault_matrix)
{
    const struct fault_case *fc = &faults[_i];
    const char *extra[] = {"--sim-fault", fc->spec, NULL};
    pid_t pid;
    int st;

    if (!h_need_data(FACE_MODEL) || !h_need_data(ASTRONAUT))
        return;
    pid = start_kpud(ASTRONAUT, extra);
    ck_assert_msg(h_wait_db(db(), fc->recovered_sql, 1, 90000) >= 1, "fault %s: no recovery (%s)",
                  fc->spec, fc->recovered_sql);
    ck_assert_msg(h_alive(pid, &st), "kpud died under fault %s", fc->spec);
    ck_assert_int_eq(h_stop(pid, 20000), 0);
    ck_assert_msg(h_db_int(db(), fc->counted_sql) >= 1, "fault %s: loss not counted (%s)", fc->spec,
                  fc->counted_sql);
    assert_all_boxes_are_the_face();
    assert_db_consistent();
}
END_TEST

START_TEST(kill9_during_ingest_keeps_database_sound)
{
    pid_t pid;
    int64_t before, after;

    if (!h_need_data(FACE_MODEL) || !h_need_data(ASTRONAUT))
        return;
    pid = start_kpud(ASTRONAUT, NULL);
    before = h_wait_db(db(), "SELECT count(*) FROM frames", 10, WAIT_MS);
    ck_assert_int_ge(before, 10);
    h_kill9(pid);
    /* Everything seen committed before the kill is still there, and the file is sound. */
    after = h_db_int(db(), "SELECT count(*) FROM frames");
    ck_assert_int_ge(after, before);
    assert_db_consistent();
    /* A new kpud opens the same database and carries on. */
    pid = start_kpud(ASTRONAUT, NULL);
    ck_assert_int_ge(h_wait_db(db(), "SELECT count(*) FROM frames", after + 5, WAIT_MS), after + 5);
    ck_assert_int_eq(h_stop(pid, 20000), 0);
    assert_db_consistent();
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM devices"), 1);
}
END_TEST

START_TEST(bad_configuration_is_refused_clearly)
{
    FILE *f = fopen(h_path("bad.conf"), "w");
    pid_t pid;
    int st = 0;
    char *argv[] = {(char *)h_kpud(), "--config", (char *)h_path("bad.conf"), NULL};

    ck_assert_ptr_nonnull(f);
    fputs("[detect]\nthreshold = 7\n", f);
    fclose(f);
    pid = h_spawn(argv, h_path("kpud.log"));
    while (h_alive(pid, &st))
        ck_assert(h_wait_file(h_path("kpud.log"), "threshold", 5000) || 1);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 1);
    ck_assert(h_file_contains(h_path("kpud.log"), "bad.conf:2: [detect] threshold: invalid "
                                                  "value '7'"));
}
END_TEST

START_TEST(unknown_option_is_a_usage_error)
{
    pid_t pid;
    int st = 0;
    char *argv[] = {(char *)h_kpud(), "--no-such-option", NULL};

    pid = h_spawn(argv, h_path("kpud.log"));
    while (h_alive(pid, &st))
        h_wait_file(h_path("kpud.log"), "usage", 100);
    ck_assert_int_eq(WEXITSTATUS(st), 2);
    ck_assert(h_file_contains(h_path("kpud.log"), "usage: kpud"));
}
END_TEST

static Suite *daemon_suite(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc = tcase_create("device-side");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, sim_streams_face_into_sqlite);
    tcase_add_test(tc, sim_two_faces_two_boxes);
    tcase_add_test(tc, tty_transport_over_a_pty);
    tcase_add_test(tc, record_from_start_names_the_board);
    tcase_add_loop_test(tc, fault_matrix, 0, (int)(sizeof(faults) / sizeof(faults[0])));
    tcase_add_test(tc, kill9_during_ingest_keeps_database_sound);
    tcase_add_test(tc, bad_configuration_is_refused_clearly);
    tcase_add_test(tc, unknown_option_is_a_usage_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(daemon_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
