/* SPDX-License-Identifier: MIT */
/*
 * Crash safety of the real kpud (issue 9): rounds of kill -9 at random moments while kpud
 * ingests at full speed, alternating a replayed capture at speed 0 (about 50,000 frames a
 * second) and the simulated board with --sim-fast (the emulated KPU as fast as it goes).
 *
 * kpud runs at debug level, where every committed batch is logged as
 *   "store: committed batch B: N frames, T in total, up to session S frame F".
 * After each kill: PRAGMA integrity_check says ok; the frames table holds at least what it
 * held before the round plus T (every frame reported committed is there); the frame (S, F)
 * of the last reported batch is there; no frame is stored twice and no detection lacks its
 * frame; and the simulated board's process has gone with its daemon. The database carries
 * over from round to round, so every restart also opens a file left by a kill.
 *
 * KPU_REL_CRASH_ROUNDS sets the number of rounds (default 50), KPU_REL_SEED the random
 * seed (default: the time; printed so a failure can be repeated).
 */
#include <check.h>
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define FACE_MODEL "models/maixpy_facedetect_320x240.kmodel"
#define ASTRONAUT "images/astronaut_320x240.png"
#define DEFAULT_ROUNDS 50
#define SIM_EVERY 5           /* every 5th round runs the simulated board instead of a replay */
#define MAX_KILL_DELAY_MS 400 /* the kill comes 0..400 ms after the first committed batch */
#define START_TIMEOUT_MS 60000
#define COMMITTED_TAG "store: committed batch "

struct committed {
    int seen;
    uint64_t total;
    int64_t session;
    uint32_t frame;
};

/* The last complete "committed batch" line of a log. */
static struct committed last_committed(const char *log)
{
    struct committed c = {0};
    char line[512];
    FILE *f = fopen(log, "r");

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, COMMITTED_TAG);
        unsigned long long batch, total;
        unsigned frames, frame;
        long long session;

        if (!p || line[strlen(line) - 1] != '\n')
            continue; /* a line cut by the kill proves nothing */
        if (sscanf(p, COMMITTED_TAG "%llu: %u frames, %llu in total, up to session %lld frame %u",
                   &batch, &frames, &total, &session, &frame) == 5) {
            c.seen = 1;
            c.total = total;
            c.session = session;
            c.frame = frame;
        }
    }
    fclose(f);
    return c;
}

static const char *db(void)
{
    return h_path("state/kpud.db");
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* 1 if a live (not zombie) process has needle in its command line. */
static int live_process_with(const char *needle)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int found = 0;

    ck_assert_ptr_nonnull(d);
    while (!found && (e = readdir(d))) {
        char path[300], buf[4096], state = 0;
        FILE *f;
        size_t n;

        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        f = fopen(path, "r");
        if (!f)
            continue;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
            if (!buf[i])
                buf[i] = ' ';
        buf[n] = 0;
        if (!strstr(buf, needle))
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
                state = 0;
            fclose(f);
        }
        found = state && state != 'Z';
    }
    closedir(d);
    return found;
}

static int wait_no_process_with(const char *needle, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (!live_process_with(needle))
            return 1;
        pause_ms(20);
    }
    return !live_process_with(needle);
}

static pid_t start_kpud(int sim, const char *log)
{
    static char replay[600], sim_arg[600];
    char *argv[32];
    int n = 0;

    argv[n++] = (char *)h_kpud();
    argv[n++] = "--state-dir";
    argv[n++] = (char *)h_path("state");
    argv[n++] = "--socket";
    argv[n++] = (char *)h_path("kpud.sock");
    argv[n++] = "--config";
    argv[n++] = "/dev/null";
    argv[n++] = "--log-level";
    argv[n++] = "debug";
    if (sim) {
        snprintf(sim_arg, sizeof(sim_arg), "--sim=%s", h_datapath(ASTRONAUT));
        argv[n++] = sim_arg;
        argv[n++] = "--sim-model";
        argv[n++] = (char *)h_datapath(FACE_MODEL);
        argv[n++] = "--sim-agent";
        argv[n++] = (char *)h_agent_sim();
        argv[n++] = "--sim-fast";
    } else {
        snprintf(replay, sizeof(replay), "%s", KPU_TEST_REPLAY_DIR "/normal.kcap");
        argv[n++] = "--replay";
        argv[n++] = replay;
        argv[n++] = "--replay-speed";
        argv[n++] = "0";
        argv[n++] = "--replay-loop";
    }
    argv[n] = NULL;
    return h_spawn(argv, log);
}

static void assert_db_sound(void)
{
    h_assert_db_sound(db());
}

START_TEST(kill9_rounds_lose_nothing_committed)
{
    const char *env = getenv("KPU_REL_CRASH_ROUNDS");
    const char *senv = getenv("KPU_REL_SEED");
    int rounds = env && atoi(env) > 0 ? atoi(env) : DEFAULT_ROUNDS;
    unsigned seed = senv ? (unsigned)strtoul(senv, NULL, 10) : (unsigned)time(NULL);
    uint64_t committed_all = 0;
    int64_t before = 0;
    int sim_rounds = 0;

    if (!h_need_data(FACE_MODEL) || !h_need_data(ASTRONAUT))
        return;
    printf("crash: %d rounds, seed %u (KPU_REL_SEED to repeat)\n", rounds, seed);
    srand(seed);
    for (int round = 1; round <= rounds; round++) {
        int sim = round % SIM_EVERY == 0;
        char log[64], sql[160];
        struct committed c;
        int64_t after;
        pid_t pid;

        snprintf(log, sizeof(log), "kpud-%d.log", round);
        pid = start_kpud(sim, h_path(log));
        ck_assert_msg(h_wait_file(h_path(log), COMMITTED_TAG, START_TIMEOUT_MS),
                      "round %d: kpud committed nothing (see %s)", round, h_path(log));
        pause_ms(rand() % (MAX_KILL_DELAY_MS + 1));
        h_kill9(pid);
        c = last_committed(h_path(log));
        ck_assert_msg(c.seen, "round %d: no complete committed line", round);

        assert_db_sound();
        after = h_db_int(db(), "SELECT count(*) FROM frames");
        ck_assert_msg((uint64_t)after >= (uint64_t)before + c.total,
                      "round %d: %" PRId64 " frames stored, %" PRId64 " before + %" PRIu64
                      " reported committed",
                      round, after, before, c.total);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM frames WHERE session_id = %lld AND frame_seq = %u",
                 (long long)c.session, c.frame);
        ck_assert_msg(h_db_int(db(), sql) == 1, "round %d: frame %u of session %lld is missing",
                      round, c.frame, (long long)c.session);
        if (sim) {
            /* The board process goes with its daemon (its flash file is in our state dir). */
            ck_assert_msg(wait_no_process_with(h_path("state/sim-flash.bin"), 10000),
                          "round %d: kpu-agent-sim outlived kpud", round);
            sim_rounds++;
        }
        committed_all += c.total;
        before = after;
    }
    printf("crash: %d rounds (%d simulated board, %d replay at speed 0): %" PRIu64
           " frames reported committed before the kills, all present; %" PRId64
           " frames in the database, integrity_check ok after every kill\n",
           rounds, sim_rounds, rounds - sim_rounds, committed_all, before);
}
END_TEST

static void teardown(void)
{
    h_cleanup();
}

int main(void)
{
    Suite *s = suite_create("reliability-crash");
    TCase *tc = tcase_create("kill9");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, kill9_rounds_lose_nothing_committed);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
