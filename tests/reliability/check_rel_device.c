/* SPDX-License-Identifier: MIT */
/*
 * The device side of the real kpud under faults (issue 9), beyond the single-fault matrix
 * of tests/integration/check_daemon.c:
 *   - corrupt bytes at 1e-3 and 1e-2 from the simulated board (kpu-agent-sim --fault);
 *   - an agent reboot loop (a recorded reboot mid-stream, replayed again and again);
 *   - a board at the wrong line rate (baud mismatch: what arrives is garbage at the line's
 *     byte rate) and a board flooding garbage as fast as the line takes it, on a pty
 *     through the tty transport; afterwards the real agent appears on the same line.
 * For each: kpud stays up, counts the loss, stores nothing wrong (every stored box is the
 * astronaut's face, no frame twice, no orphan row) and recovers within a stated time; the
 * measured recovery times are printed for docs/reliability.md.
 */
#define _GNU_SOURCE /* posix_openpt, ptsname_r */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "rel_util.h"

#define FACE_MODEL "models/maixpy_facedetect_320x240.kmodel"
#define ASTRONAUT "images/astronaut_320x240.png"
#define WAIT_MS 90000
/* Stated recovery bounds. A reboot is a new HELLO: recovery is one handshake. After
 * garbage the session may sit in its longest backoff (30 s, daemon/session.c
 * BACKOFF_MAX_MS) before the next HELLO, plus the HELLO retries (4 x 1 s). */
#define REBOOT_RECOVERY_MAX_MS 2000
#define GARBAGE_RECOVERY_MAX_MS 36000
#define LINE_RATE_BYTES_S 200000 /* 2 Mbaud 8N1 (DESIGN.md §2): 10 bits a byte */
#define GARBAGE_PHASE_MS 4000

static pid_t kpud;

static void teardown(void)
{
    if (kpud > 0)
        h_stop(kpud, 20000);
    kpud = 0;
    h_cleanup();
}

static const char *db(void)
{
    return h_path("state/kpud.db");
}

static void assert_nothing_wrong_stored(void)
{
    h_assert_db_sound(db());
    /* The astronaut's face (model .md): (109,31) 64x86; a damaged frame would show else. */
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM detections WHERE label <> 'face' OR "
                                    "score < 0.9 OR x < 95 OR x > 125 OR y < 15 OR y > 45 OR "
                                    "w < 50 OR w > 80 OR h < 70 OR h > 100"),
                     0);
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM frames WHERE n_boxes <> 1"), 0);
}

static pid_t start_sim_kpud(const char *fault)
{
    const char *extra[] = {"--sim-fault", fault, NULL};

    return h_kpud_sim(ASTRONAUT, FACE_MODEL, extra);
}

static const struct {
    const char *fault;
    int64_t frames; /* stored before the check */
} corrupt_cases[] = {
    {"corrupt=0.001", 40},
    {"corrupt=0.01", 20},
};

START_TEST(corrupt_bytes)
{
    const char *fault = corrupt_cases[_i].fault;
    int64_t frames, errors;
    int st;

    if (!h_need_data(FACE_MODEL) || !h_need_data(ASTRONAUT))
        return;
    kpud = start_sim_kpud(fault);
    ck_assert_msg(h_wait_db(db(), "SELECT count(*) FROM frames", corrupt_cases[_i].frames,
                            WAIT_MS) >= corrupt_cases[_i].frames,
                  "%s: frames stopped", fault);
    ck_assert_msg(h_alive(kpud, &st), "kpud died under %s", fault);
    ck_assert_int_eq(h_stop(kpud, 20000), 0);
    kpud = 0;
    frames = h_db_int(db(), "SELECT count(*) FROM frames");
    errors = h_db_int(db(), "SELECT sum(link_errors) FROM sessions");
    printf("device: %s: %" PRId64 " frames stored, %" PRId64 " link errors counted, %" PRId64
           " frames lost\n",
           fault, frames, errors, h_db_int(db(), "SELECT sum(frames_lost) FROM sessions"));
    ck_assert_int_ge(errors, 1);
    assert_nothing_wrong_stored();
}
END_TEST

START_TEST(reboot_loop)
{
    /* The gap between the last frame of one session and the first of the next. */
    static const char gap_sql[] =
        "SELECT max(n.first - c.last) / 1000000 FROM "
        "(SELECT session_id s, max(time_ns) last FROM frames GROUP BY 1) c JOIN "
        "(SELECT session_id s, min(time_ns) first FROM frames GROUP BY 1) n "
        "ON n.s = (SELECT min(session_id) FROM frames WHERE session_id > c.s)";
    int64_t sessions, gap_ms;
    int st;

    if (!h_need_data(FACE_MODEL) || !h_need_data(ASTRONAUT))
        return;
    /* kpu-agent-sim reboots once per process, so the loop is its recorded reboot
     * (tests/replay/reboot.kcap) played again and again at 4x: a board that keeps
     * rebooting, each time mid-stream. */
    {
        const char *const fast[] = {"--replay-speed", "4", NULL};
        kpud = rel_start_kpud("reboot.kcap", "/dev/null", fast);
    }
    ck_assert_int_ge(h_wait_db(db(), "SELECT count(DISTINCT session_id) FROM frames", 8, WAIT_MS),
                     8);
    ck_assert_msg(h_alive(kpud, &st), "kpud died in a reboot loop");
    ck_assert_int_eq(h_stop(kpud, 20000), 0);
    kpud = 0;
    sessions = h_db_int(db(), "SELECT count(*) FROM sessions");
    gap_ms = h_db_int(db(), gap_sql);
    printf("device: reboot loop (recorded reboot replayed at 4x): %" PRId64
           " sessions, longest gap from the "
           "last frame before a reboot to the first after it %" PRId64 " ms\n",
           sessions, gap_ms);
    ck_assert_int_ge(sessions, 8);
    ck_assert_int_le(gap_ms, REBOOT_RECOVERY_MAX_MS);
    /* Each reboot is counted as a reconnect: one session row per handshake. */
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM sessions WHERE end_ns IS NULL"), 0);
    assert_nothing_wrong_stored();
}
END_TEST

/* Write garbage to the pty master for ms milliseconds, at rate bytes/s (0 = as fast as the
 * line takes it), discarding what kpud writes. Returns the bytes written. */
static uint64_t babble(int master, int rate, int ms)
{
    uint8_t buf[4096], sink[4096];
    uint64_t t0 = rel_now_ms(), written = 0;
    uint32_t x = 12345;

    while (rel_now_ms() - t0 < (uint64_t)ms) {
        size_t n = rate ? (size_t)rate / 100 : sizeof(buf); /* paced in 10 ms steps */
        ssize_t w;
        if (n > sizeof(buf))
            n = sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
        }
        w = write(master, buf, n);
        if (w > 0)
            written += (uint64_t)w;
        while (read(master, sink, sizeof(sink)) > 0)
            ;
        if (rate)
            rel_pause_ms(10);
    }
    return written;
}

static int64_t link_errors_now(void)
{
    kpu_client_t *c;
    struct kpu_client_stats st;
    struct kpu_client_opts o = {.socket_path = h_path("kpud.sock"), .timeout_ms = 5000};

    ck_assert_int_eq(kpu_client_open(&o, &c), 0);
    ck_assert_int_eq(kpu_client_get_stats(c, &st), 0);
    kpu_client_close(c);
    return (int64_t)st.link_errors;
}

START_TEST(garbage_then_the_real_agent)
{
    char slave[128];
    int master, st;
    uint64_t slow, fast, t0;
    int64_t e0, e1, e2, recovery_ms;
    pid_t sim;

    if (!h_need_data(FACE_MODEL) || !h_need_data(ASTRONAUT))
        return;
    master = posix_openpt(O_RDWR | O_NOCTTY);
    ck_assert_int_ge(master, 0);
    ck_assert_int_eq(grantpt(master), 0);
    ck_assert_int_eq(unlockpt(master), 0);
    ck_assert_int_eq(ptsname_r(master, slave, sizeof(slave)), 0);
    {
        char *argv[] = {(char *)h_kpud(),
                        "--state-dir",
                        (char *)h_path("state"),
                        "--socket",
                        (char *)h_path("kpud.sock"),
                        "--config",
                        "/dev/null",
                        "--tty",
                        slave,
                        "--baud",
                        "2000000",
                        NULL};
        kpud = h_spawn(argv, h_path("kpud.log"));
    }
    ck_assert(h_wait_file(h_path("kpud.log"), "ready", 20000));
    ck_assert_int_eq(fcntl(master, F_SETFL, O_NONBLOCK), 0);
    e0 = link_errors_now();
    /* Baud mismatch: garbage at the line's byte rate. */
    slow = babble(master, LINE_RATE_BYTES_S, GARBAGE_PHASE_MS);
    ck_assert_msg(h_alive(kpud, &st), "kpud died under garbage at line rate");
    e1 = link_errors_now();
    /* A babbling board: garbage as fast as kpud reads it. */
    fast = babble(master, 0, GARBAGE_PHASE_MS);
    ck_assert_msg(h_alive(kpud, &st), "kpud died under a garbage flood");
    e2 = link_errors_now();
    printf("device: garbage at line rate: %" PRIu64 " bytes in %d ms, %" PRId64
           " link errors counted; flood: %" PRIu64 " bytes in %d ms, %" PRId64 " counted\n",
           slow, GARBAGE_PHASE_MS, e1 - e0, fast, GARBAGE_PHASE_MS, e2 - e1);
    ck_assert_int_gt(e1, e0);
    ck_assert_int_gt(e2, e1);
    ck_assert_int_le(h_db_int(db(), "SELECT count(*) FROM frames"), 0); /* none, or no table */

    /* The real agent takes the line (the pty master as its fd 3). */
    ck_assert_int_eq(fcntl(master, F_SETFL, 0), 0);
    t0 = rel_now_ms();
    sim = fork();
    ck_assert_int_ge(sim, 0);
    if (sim == 0) {
        int log = open(h_path("sim.log"), O_WRONLY | O_CREAT | O_APPEND, 0644);
        char *argv[] = {(char *)h_agent_sim(),
                        "serve",
                        "--fd",
                        "3",
                        "--image",
                        (char *)h_datapath(ASTRONAUT),
                        "--model",
                        (char *)h_datapath(FACE_MODEL),
                        "--manifest",
                        KPU_TEST_MODELS_DIR "/maixpy_facedetect_320x240.ini",
                        NULL};
        if (log >= 0)
            dup2(log, 2);
        dup2(master, 3);
        execv(argv[0], argv);
        _exit(127);
    }
    ck_assert_int_ge(
        h_wait_db(db(), "SELECT count(*) FROM frames", 1, GARBAGE_RECOVERY_MAX_MS + 15000), 1);
    recovery_ms = (int64_t)(rel_now_ms() - t0);
    ck_assert_int_ge(h_wait_db(db(), "SELECT count(*) FROM frames", 10, WAIT_MS), 10);
    printf("device: after the garbage, the real agent streamed %" PRId64 " ms after it started "
           "(bound %d ms)\n",
           recovery_ms, GARBAGE_RECOVERY_MAX_MS);
    ck_assert_int_le(recovery_ms, GARBAGE_RECOVERY_MAX_MS);
    ck_assert_int_eq(h_stop(kpud, 20000), 0);
    kpud = 0;
    h_stop(sim, 5000);
    close(master);
    assert_nothing_wrong_stored();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reliability-device");
    TCase *tc = tcase_create("faults");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_loop_test(tc, corrupt_bytes, 0,
                        (int)(sizeof(corrupt_cases) / sizeof(corrupt_cases[0])));
    tcase_add_test(tc, reboot_loop);
    tcase_add_test(tc, garbage_then_the_real_agent);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
