/* SPDX-License-Identifier: MIT */
/*
 * Golden tests of kpuctl: the real kpuctl executable against kpud-ipc-testd (the IPC
 * server with the deterministic test backend) on a real socket. Each case runs kpuctl with
 * --json, checks the exit code and compares stdout with tests/unit/kpuctl-golden/NAME.out
 * after blanking what legitimately varies (instance id, boot time, temp dir, uid/gid).
 * Set KPUCTL_GOLDEN_UPDATE=1 to rewrite the golden files (then review the diff: a change
 * to an expected file is explained in its commit).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUT_MAX (1u << 20)

static char dir[64], sock[128];
static pid_t testd = -1;

static void start_testd(void)
{
    int pfd[2];
    char line[16] = {0};

    snprintf(dir, sizeof(dir), "/tmp/kpuctl-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sock, sizeof(sock), "%s/kpud.sock", dir);
    ck_assert_int_eq(pipe(pfd), 0);
    testd = fork();
    ck_assert_int_ge(testd, 0);
    if (testd == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        execl(KPUD_TESTD_PATH, "kpud-ipc-testd", "--socket", sock, "--publish-ms", "10",
              (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    ck_assert_int_eq(read(pfd[0], line, 6), 6);
    ck_assert_str_eq(line, "ready\n");
    close(pfd[0]);
}

static void stop_testd(void)
{
    int st;
    if (testd > 0) {
        kill(testd, SIGTERM);
        waitpid(testd, &st, 0);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    testd = -1;
    unlink(sock);
}

/* Run kpuctl with argv (NULL-terminated, without argv[0]) in dir; capture stdout. */
static int run(char *const *args, char *out, size_t cap)
{
    int pfd[2], st;
    size_t len = 0;
    char *argv[32];
    pid_t pid;
    int n = 0;

    argv[n++] = (char *)"kpuctl";
    for (; *args && n < 31; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    ck_assert_int_eq(pipe(pfd), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(pfd[1], 1);
        if (!getenv("KPUCTL_TEST_STDERR"))
            dup2(devnull, 2);
        close(pfd[0]);
        if (chdir(dir) < 0)
            _exit(127);
        setenv("KPUD_SOCKET", sock, 1);
        setenv("TZ", "UTC", 1);
        execv(KPUCTL_PATH, argv);
        _exit(127);
    }
    close(pfd[1]);
    for (;;) {
        ssize_t r = read(pfd[0], out + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        ck_assert_uint_lt(len, cap - 1);
    }
    out[len] = '\0';
    close(pfd[0]);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* Blank the value of every "key": in s (up to the next , or }); s has room for OUT_MAX. */
static void blank_key(char *s, const char *key)
{
    static char tmp[OUT_MAX];
    char pat[64];
    char *p, *o = tmp;
    const char *in = s;

    snprintf(pat, sizeof(pat), "\"%s\":", key);
    while ((p = strstr(in, pat))) {
        const char *e = p + strlen(pat);
        memcpy(o, in, (size_t)(e - in));
        o += e - in;
        while (*e && *e != ',' && *e != '}' && *e != '\n')
            e++;
        memcpy(o, "\"*\"", 3);
        o += 3;
        in = e;
    }
    strcpy(o, in);
    ck_assert_uint_lt(strlen(tmp), OUT_MAX);
    strcpy(s, tmp);
}

/* Replace the JSON value (object, array, string or scalar) of key by "*": for parts that
 * describe the machine the test runs on (debuginfo's "host"). */
static void blank_value(char *s, const char *key)
{
    char pat[64], *p, *e;
    int depth = 0, in_str = 0;

    snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(s, pat);
    if (!p)
        return;
    p += strlen(pat);
    e = p;
    if (*e == '{' || *e == '[' || *e == '"') {
        do {
            if (in_str) {
                if (*e == '\\' && e[1])
                    e++;
                else if (*e == '"')
                    in_str = 0;
            } else if (*e == '"') {
                in_str = 1;
            } else if (*e == '{' || *e == '[') {
                depth++;
            } else if (*e == '}' || *e == ']') {
                depth--;
            }
            e++;
        } while (*e && (depth > 0 || in_str));
    } else {
        while (*e && *e != ',' && *e != '}' && *e != ']')
            e++;
    }
    memmove(p + 3, e, strlen(e) + 1);
    memcpy(p, "\"*\"", 3);
}

/* Replace every occurrence of from by to (to not longer than from). */
static void replace(char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to);
    char *p;
    while ((p = strstr(s, from))) {
        memcpy(p, to, tl);
        memmove(p + tl, p + fl, strlen(p + fl) + 1);
    }
}

static void normalise(char *s)
{
    replace(s, dir, "$TMP");
    blank_key(s, "instance_id");
    blank_key(s, "boot_time_ns");
    blank_key(s, "uid");
    blank_key(s, "gid");
    blank_value(s, "host");
}

static void golden(const char *name, int want_exit, char *const *args)
{
    static char out[OUT_MAX], want[OUT_MAX];
    char file[512];
    FILE *f;
    size_t n;
    int rc = run(args, out, sizeof(out));

    normalise(out);
    ck_assert_msg(rc == want_exit, "%s: exit %d, expected %d; stdout: %s", name, rc, want_exit,
                  out);
    snprintf(file, sizeof(file), "%s/%s.out", KPUCTL_GOLDEN_DIR, name);
    if (getenv("KPUCTL_GOLDEN_UPDATE")) {
        f = fopen(file, "w");
        ck_assert_ptr_nonnull(f);
        fputs(out, f);
        fclose(f);
        return;
    }
    f = fopen(file, "r");
    ck_assert_msg(f != NULL, "missing golden file %s", file);
    n = fread(want, 1, sizeof(want) - 1, f);
    want[n] = '\0';
    fclose(f);
    ck_assert_msg(strcmp(out, want) == 0, "%s differs from %s:\n--- got\n%s--- want\n%s", name,
                  file, out, want);
}

#define A(...) ((char *const[]){__VA_ARGS__, NULL})

START_TEST(test_json_verbs)
{
    FILE *f;

    start_testd();
    golden("devices", 0, A("devices", "--json"));
    golden("status", 0, A("--json", "status"));
    golden("stats", 0, A("stats", "--json"));
    golden("stats_prometheus", 0, A("stats", "--prometheus"));
    golden("watch", 0, A("watch", "--json", "--count", "3", "--label", "person"));
    golden("watch_region", 0, A("watch", "--json", "--count", "2", "--region", "0,0,30,30"));
    golden("query", 0,
           A("query", "--json", "--label", "cat", "--since", "@1800000001", "--until",
             "@1800000002", "--order", "oldest", "--limit", "4"));
    golden("query_device_score", 0,
           A("query", "--json", "--device", "0011223344556677", "--min-score", "0.97", "--limit",
             "0"));
    golden("snapshot", 0, A("snapshot", "a1b2c3d4e5f60718", "-o", "snap.ppm", "--boxes", "--json"));
    golden("config_get", 0, A("config", "get", "a1b2c3d4e5f60718", "--json"));
    golden("config_set", 0,
           A("config", "set", "a1b2c3d4e5f60718", "threshold=0.7", "roi=1,2,3,4", "--json"));
    golden("model_list", 0, A("model", "list", "--json"));
    {
        char p[256];
        uint8_t kmodel[64];
        memset(kmodel, 0, sizeof(kmodel));
        kmodel[0] = 3; /* kmodel v3 version word (research/kmodel-facts.md §2) */
        for (size_t i = 4; i < sizeof(kmodel); i++)
            kmodel[i] = (uint8_t)i;
        snprintf(p, sizeof(p), "%s/tiny.kmodel", dir);
        f = fopen(p, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(kmodel, 1, sizeof(kmodel), f), sizeof(kmodel));
        fclose(f);
    }
    golden("model_inspect", 0, A("model", "inspect", "tiny.kmodel", "--json"));
    golden("model_upload", 0,
           A("model", "upload", "tiny.kmodel", "--device", "0011223344556677", "--json"));
    golden("model_list_after_upload", 0, A("model", "list", "--json"));
    golden("model_select", 0, A("model", "select", "0011223344556677", "tiny", "--json"));
    golden("model_remove_busy", 6, A("model", "remove", "face", "--json"));
    golden("model_remove_unknown", 6, A("model", "remove", "nope", "--json"));
    golden("model_upload_named", 0,
           A("model", "upload", "tiny.kmodel", "--device", "a1b2c3d4e5f60718", "--name", "spare",
             "--json"));
    golden("model_remove", 0, A("model", "remove", "spare", "--json"));
    golden("reset", 0, A("reset", "a1b2c3d4e5f60718", "--hard", "--json"));
    golden("record_start", 0,
           A("record", "start", "a1b2c3d4e5f60718", "-o", "cap.kcap", "--notes", "x", "--json"));
    golden("record_stop", 0, A("record", "stop", "a1b2c3d4e5f60718", "--json"));
    golden("retention_show", 0, A("retention", "show", "--json"));
    golden("retention_set", 0,
           A("retention", "set", "--max-age", "7d", "--max-bytes", "1G", "--json"));
    golden("retention_apply", 0, A("retention", "apply", "--dry-run", "--json"));
    golden("agent_version", 0, A("agent", "version", "a1b2c3d4e5f60718", "--json"));
    golden("replay", 6, A("replay", "cap.kcap", "--json"));
    golden("version", 0, A("version", "--json"));
    golden("debuginfo", 0, A("debuginfo", "--json"));
    stop_testd();
    {
        char p[256];
        snprintf(p, sizeof(p), "%s/tiny.kmodel", dir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/snap.ppm", dir);
        unlink(p);
        rmdir(dir);
    }
}
END_TEST

START_TEST(test_snapshot_files)
{
    static char out[4096];
    char p[256];
    unsigned char buf[256];
    FILE *f;
    size_t n;

    start_testd();
    ck_assert_int_eq(
        run(A("snapshot", "a1b2c3d4e5f60718", "-o", "s.ppm", "--boxes"), out, sizeof(out)), 0);
    snprintf(p, sizeof(p), "%s/s.ppm", dir);
    f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    /* P6 header, 8x6, then 48 RGB pixels; the box (2,1) 4x3 is outlined in red. */
    ck_assert_uint_eq(n, 11 + 8 * 6 * 3);
    ck_assert_int_eq(memcmp(buf, "P6\n8 6\n255\n", 11), 0);
    {
        const unsigned char *px = buf + 11 + (1 * 8 + 2) * 3; /* (x 2, y 1) */
        ck_assert_int_eq(px[0], 255);
        ck_assert_int_eq(px[1], 0);
        ck_assert_int_eq(px[2], 0);
        px = buf + 11 + 0; /* (0, 0): planar R=0, G=255, B=50 from the backend's pattern */
        ck_assert_int_eq(px[0], 0);
        ck_assert_int_eq(px[1], 255);
        ck_assert_int_eq(px[2], 50);
    }
    ck_assert_int_eq(run(A("snapshot", "a1b2c3d4e5f60718", "-o", "s.png"), out, sizeof(out)), 0);
    snprintf(p, sizeof(p), "%s/s.png", dir);
    f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, 8, f);
    fclose(f);
    ck_assert_uint_eq(n, 8);
    ck_assert_int_eq(memcmp(buf, "\x89PNG\r\n\x1a\n", 8), 0);
    unlink(p);
    snprintf(p, sizeof(p), "%s/s.ppm", dir);
    unlink(p);
    stop_testd();
    rmdir(dir);
}
END_TEST

START_TEST(test_exit_codes)
{
    static char out[4096];

    start_testd();
    ck_assert_int_eq(run(A("frobnicate"), out, sizeof(out)), 1);
    ck_assert_int_eq(run(A("query", "--since", "yesterday-ish"), out, sizeof(out)), 1);
    ck_assert_int_eq(run(A("watch", "--min-score", "2"), out, sizeof(out)), 1);
    ck_assert_int_eq(run(A("reset", "nope"), out, sizeof(out)), 3);
    ck_assert_int_eq(run(A("snapshot", "0011223344556677", "-o", "x.png"), out, sizeof(out)), 3);
    ck_assert_int_eq(run(A("config", "set", "a1b2c3d4e5f60718", "threshold=5"), out, sizeof(out)),
                     1);
    ck_assert_int_eq(run(A("--socket", "/nonexistent/kpud.sock", "devices"), out, sizeof(out)), 2);
    ck_assert_int_eq(run(A("--help"), out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "exit codes"));
    ck_assert_ptr_nonnull(strstr(out, "5  protocol mismatch"));
    /* Human output works too (not golden: column widths may be tuned). */
    ck_assert_int_eq(run(A("devices"), out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "a1b2c3d4e5f60718"));
    ck_assert_int_eq(run(A("watch", "--count", "1"), out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "person 0.60"));
    stop_testd();
    ck_assert_int_eq(run(A("version"), out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "unreachable"));
    ck_assert_int_eq(run(A("status"), out, sizeof(out)), 2);
    rmdir(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kpuctl");
    TCase *t = tcase_create("kpuctl");
    tcase_add_test(t, test_json_verbs);
    tcase_add_test(t, test_snapshot_files);
    tcase_add_test(t, test_exit_codes);
    suite_add_tcase(s, t);
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
