/* SPDX-License-Identifier: MIT */
/*
 * The agent firmware end to end on emulated hardware: kpu-agent-qemu.elf (built with the
 * face model and the astronaut frame from KPU_TEST_DATA) boots under
 * qemu-system-riscv64 -machine sifive_u, its UART0 on a pty; the real kpud opens the pty
 * with its tty transport. The face (109,31)-(173,117) of the model's .md must reach SQLite
 * and kpuctl query --json. Then `kpuctl agent flash` writes the K210 agent image through
 * the emulated board: the RISC-V build of the agent's image writer must accept the boot
 * image kpud wrapped (its SHA-256 computed on RISC-V equal to the host's) and the board
 * must come back streaming. The test prints the boot and frame times it saw (recorded in
 * docs/performance.md "QEMU agent"); it asserts no timing.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define FACE_MODEL "models/maixpy_facedetect_320x240.kmodel"
#define ASTRONAUT "images/astronaut_320x240.png"
#define PTY_WAIT_MS 20000
#define HELLO_WAIT_MS 60000
#define FRAMES 4
#define FRAMES_WAIT_MS 180000 /* seconds per frame under TCG, two cores shared with others */
#define PTY_PREFIX "/dev/pts/"

static void teardown(void)
{
    h_cleanup();
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *db(void)
{
    return h_path("state/kpud.db");
}

/* QEMU prints "char device redirected to /dev/pts/N (label serial0)"; copy the path. */
static int pty_from_line(const char *line, char *out, size_t cap)
{
    const char *p = strstr(line, PTY_PREFIX);
    size_t n;

    if (!p)
        return -1;
    n = strcspn(p, " \r\n");
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* Run kpuctl --json query; returns how many rows were read and how many were the face. */
static void query_rows(int *rows, int *faces)
{
    char line[1024];
    int fd, n = 0, f = 0;
    char *argv[] = {KPU_TEST_KPUCTL,
                    "--socket",
                    (char *)h_path("kpud.sock"),
                    "--json",
                    "query",
                    "--limit",
                    "5",
                    NULL};
    pid_t pid = h_spawn_pipe(argv, h_path("kpuctl.log"), &fd);

    while (h_read_line(fd, line, sizeof(line), 20000) > 0) {
        n++;
        if (strstr(line, "\"label\":\"face\"") &&
            strstr(line, "\"x\":109,\"y\":31,\"w\":64,\"h\":86"))
            f++;
    }
    close(fd);
    ck_assert_int_eq(h_stop(pid, 10000), 0);
    *rows = n;
    *faces = f;
}

/* kpuctl agent flash DEV, output to kpuctl-flash.log; its exit status. */
static int kpuctl_flash(const char *dev)
{
    char *argv[] = {KPU_TEST_KPUCTL, "--socket", (char *)h_path("kpud.sock"), "agent", "flash",
                    (char *)dev,     NULL};
    int st = 0;
    pid_t p = fork();

    ck_assert_int_ge(p, 0);
    if (p == 0) {
        if (!freopen(h_path("kpuctl-flash.log"), "w", stdout) || dup2(1, 2) < 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(p, &st, 0), p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char line[512];
        FILE *f = fopen(h_path("kpuctl-flash.log"), "r");

        while (f && fgets(line, sizeof(line), f))
            fprintf(stderr, "kpuctl| %s", line);
        if (f)
            fclose(f);
        f = fopen(h_path("kpud.log"), "r");
        while (f && fgets(line, sizeof(line), f))
            if (strstr(line, "flash") || strstr(line, "image") || strstr(line, "timed out"))
                fprintf(stderr, "kpud| %s", line);
        if (f)
            fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

START_TEST(qemu_agent_finds_the_face)
{
    char line[512], pty[64];
    int out, rows, faces;
    pid_t qemu, kpud;
    double t0, t_hello, t_flash;
    int64_t n, t_first, t_last;
    char *qemu_argv[] = {KPU_TEST_QEMU, "-machine", "sifive_u",
                         "-m",          "128M",     "-bios",
                         "none",        "-kernel",  KPU_TEST_AGENT_QEMU,
                         "-display",    "none",     "-monitor",
                         "none",        "-serial",  "pty",
                         NULL};

    if (!h_need_data(FACE_MODEL) || !h_need_data(ASTRONAUT))
        return;
    ck_assert_msg(access(KPU_TEST_AGENT_QEMU, R_OK) == 0, "%s not built", KPU_TEST_AGENT_QEMU);
    t0 = now_s();
    qemu = h_spawn_pipe(qemu_argv, h_path("qemu.log"), &out);
    ck_assert_int_gt(h_read_line(out, line, sizeof(line), PTY_WAIT_MS), 0);
    ck_assert_msg(pty_from_line(line, pty, sizeof(pty)) == 0, "qemu printed '%s'", line);
    {
        char *argv[] = {(char *)h_kpud(),
                        "--state-dir",
                        (char *)h_path("state"),
                        "--socket",
                        (char *)h_path("kpud.sock"),
                        "--config",
                        "/dev/null",
                        "--tty",
                        pty,
                        "--baud",
                        "2000000",
                        "--agent-image",
                        KPU_TEST_AGENT_K210_BIN,
                        NULL};
        kpud = h_spawn(argv, h_path("kpud.log"));
    }
    ck_assert_int_ge(h_wait_db(db(), "SELECT count(*) FROM devices", 1, HELLO_WAIT_MS), 1);
    t_hello = now_s();
    ck_assert_int_ge(h_wait_db(db(), "SELECT count(*) FROM frames", FRAMES, FRAMES_WAIT_MS),
                     FRAMES);

    query_rows(&rows, &faces);
    ck_assert_int_ge(rows, 1);
    ck_assert_int_eq(faces, rows);

    /* Flash the K210 agent through the emulated board, then it streams again. */
    {
        char dev[64];
        int64_t frames;

        ck_assert_int_eq(h_db_text(db(), "SELECT id FROM devices", dev, sizeof(dev)), 0);
        t_flash = now_s();
        ck_assert_msg(kpuctl_flash(dev) == 0, "kpuctl agent flash failed (kpuctl-flash.log)");
        t_flash = now_s() - t_flash;
        ck_assert(h_file_contains(h_path("kpuctl-flash.log"), "written to flash and booted"));
        ck_assert(h_file_contains(h_path("kpud.log"), "written and verified"));
        frames = h_db_int(db(), "SELECT count(*) FROM frames");
        ck_assert_int_gt(h_wait_db(db(), "SELECT count(*) FROM frames", frames + 1, FRAMES_WAIT_MS),
                         frames);
    }

    ck_assert_int_eq(h_stop(kpud, 20000), 0);
    h_stop(qemu, 5000);
    close(out);

    /* The board is the QEMU agent on the tty transport, and every stored box is the face. */
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM devices WHERE board = 'qemu' AND "
                                    "transport = 'tty'"),
                     1);
    n = h_db_int(db(), "SELECT count(*) FROM detections");
    ck_assert_int_ge(n, FRAMES);
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM frames WHERE n_boxes <> 1"), 0);
    ck_assert_int_eq(h_db_int(db(), "SELECT count(*) FROM detections WHERE label = 'face' AND "
                                    "x = 109 AND y = 31 AND w = 64 AND h = 86 AND score >= 0.9"),
                     n);

    t_first = h_db_int(db(), "SELECT min(device_time_us) FROM frames");
    t_last = h_db_int(db(), "SELECT max(device_time_us) FROM frames");
    n = h_db_int(db(), "SELECT count(*) FROM frames");
    printf("qemu e2e: qemu start to agent hello in kpud %.2f s; %lld frames, %.2f s per frame "
           "(device clock), model %.2f s per frame (kpu_us)\n",
           t_hello - t0, (long long)n, (double)(t_last - t_first) / 1e6 / (double)(n - 1),
           (double)h_db_int(db(), "SELECT avg(kpu_us) FROM frames") / 1e6);
    printf("qemu e2e: kpuctl agent flash of the K210 image through the emulated board %.2f s\n",
           t_flash);
    fflush(stdout);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("qemu_e2e");
    TCase *tc = tcase_create("qemu");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 290);
    tcase_add_test(tc, qemu_agent_finds_the_face);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
