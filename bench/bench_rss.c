/* SPDX-License-Identifier: MIT */
/*
 * kpud idle RSS (issue 5, Performance): one simulated board attached, streaming at its
 * default 30 fps, no client connected. Goal: <= 4 MB (4096 KiB).
 *
 *   bench_rss KPUD AGENT_SIM MODEL IMAGES [SECONDS]
 *
 * Starts kpud --sim (the agent simulator is its child, a separate process, not counted),
 * waits until frames reach the database, then samples /proc/PID/status and
 * /proc/PID/smaps at 5 s and at SECONDS (default 30) after that: VmRSS, its anonymous and
 * file parts, PSS, and the largest mappings. Baseline in the same run: the same kpud with
 * no device (what the board and its session add), and mosquitto idle when installed (a
 * small C daemon on libc for scale).
 */
#include "bench_util.h"

#include <sqlite3.h>

#define TOP_MAPPINGS 8

struct mapping {
    char name[128];
    long rss_kb;
};

/* Sum Rss per mapped object (file path or [heap]/[stack]/anon) from smaps. */
static int smaps_top(pid_t pid, struct mapping *top, int n_top)
{
    char path[64], line[512], cur[128] = "";
    struct mapping all[128];
    int n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long a, b;
        char name[256] = "";
        long kb;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %255[^\n]", &a, &b, name) >= 2 &&
            strchr(line, '-') < strchr(line, ' ')) {
            const char *s = strrchr(name, '/');
            snprintf(cur, sizeof(cur), "%s", name[0] ? (s ? s + 1 : name) : "[anon]");
        } else if (sscanf(line, "Rss: %ld kB", &kb) == 1 && kb > 0) {
            int i;
            for (i = 0; i < n && strcmp(all[i].name, cur) != 0; i++)
                ;
            if (i == n && n < 128) {
                snprintf(all[n].name, sizeof(all[n].name), "%s", cur);
                all[n++].rss_kb = 0;
            }
            if (i < n)
                all[i].rss_kb += kb;
        }
    }
    fclose(f);
    for (int k = 0; k < n_top && k < n; k++) {
        int best = k;
        for (int i = k + 1; i < n; i++)
            if (all[i].rss_kb > all[best].rss_kb)
                best = i;
        top[k] = all[best];
        all[best] = all[k];
    }
    return n < n_top ? n : n_top;
}

static long pss_kb(pid_t pid)
{
    char path[64], line[256];
    long v = -1, kb;
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Pss: %ld kB", &kb) == 1)
            v = kb;
    fclose(f);
    return v;
}

static void sample(const char *what, pid_t pid, int detail)
{
    struct mapping top[TOP_MAPPINGS];
    int n;

    printf("  %-28s RSS %5ld KiB (anon %5ld, file %5ld, shmem %4ld)  PSS %5ld KiB\n", what,
           bu_proc_status_kb(pid, "VmRSS"), bu_proc_status_kb(pid, "RssAnon"),
           bu_proc_status_kb(pid, "RssFile"), bu_proc_status_kb(pid, "RssShmem"), pss_kb(pid));
    if (!detail)
        return;
    n = smaps_top(pid, top, TOP_MAPPINGS);
    printf("    largest:");
    for (int i = 0; i < n; i++)
        printf(" %s %ld%s", top[i].name, top[i].rss_kb, i + 1 < n ? "," : " KiB\n");
}

static int frames_in(const char *db_path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int n = 0;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return 0;
    }
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM frames", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/kpu-bench-rss-XXXXXX", sub[96], sock[128], db[128], conf[128], simarg[600];
    unsigned seconds = argc > 5 ? (unsigned)atoi(argv[5]) : 30u;
    const char *mosq = access("/usr/sbin/mosquitto", X_OK) == 0 ? "/usr/sbin/mosquitto" : NULL;
    uint64_t t0;
    pid_t pid;
    long rss = -1;

    if (argc < 5 || seconds < 6) {
        fprintf(stderr, "usage: %s KPUD AGENT_SIM MODEL IMAGES [SECONDS >= 6]\n", argv[0]);
        return 2;
    }
    if (!mkdtemp(dir))
        return 1;
    bu_print_load();
    printf("kpud idle RSS (no client connected):\n");

    /* Baseline: no device. */
    snprintf(sub, sizeof(sub), "%s/none", dir);
    mkdir(sub, 0700);
    snprintf(sock, sizeof(sock), "%s/kpud.sock", sub);
    if (bu_kpud_conf(sub, 64, conf, sizeof(conf)) == 0) {
        char *args[] = {argv[1],    "-c", conf,          "--state-dir", sub,
                        "--socket", sock, "--log-level", "warning",     NULL};
        pid = bu_spawn(args, NULL);
        if (pid > 0 && bu_wait_path(sock, pid, 10000) == 0) {
            bu_sleep_ms(3000);
            sample("kpud, no device, 3 s:", pid, 0);
        }
        bu_stop(pid, NULL);
    }

    /* One simulated board. */
    snprintf(sub, sizeof(sub), "%s/sim", dir);
    mkdir(sub, 0700);
    snprintf(sock, sizeof(sock), "%s/kpud.sock", sub);
    snprintf(db, sizeof(db), "%s/kpud.db", sub);
    snprintf(simarg, sizeof(simarg), "--sim=%s", argv[4]);
    if (bu_kpud_conf(sub, 64, conf, sizeof(conf)) < 0)
        return 1;
    {
        char *args[] = {argv[1],       "-c",    conf,          "--state-dir", sub,
                        "--socket",    sock,    simarg,        "--sim-agent", argv[2],
                        "--sim-model", argv[3], "--log-level", "warning",     NULL};
        pid = bu_spawn(args, NULL);
    }
    if (pid < 0 || bu_wait_path(sock, pid, 10000) < 0) {
        fprintf(stderr, "kpud did not start\n");
        bu_rm_rf(dir);
        return 1;
    }
    t0 = bu_mono_ns();
    while (frames_in(db) == 0 && bu_mono_ns() - t0 < 20000000000ull)
        bu_sleep_ms(100);
    if (frames_in(db) == 0)
        printf("  (the simulated board stored no frame in 20 s: is the model right?)\n");
    bu_sleep_ms(5000);
    sample("kpud, 1 sim board, 5 s:", pid, 1);
    bu_sleep_ms((seconds - 5) * 1000u);
    {
        char what[64];
        snprintf(what, sizeof(what), "kpud, 1 sim board, %u s:", seconds);
        sample(what, pid, 1);
    }
    rss = bu_proc_status_kb(pid, "VmRSS");
    printf("  frames stored meanwhile: %d\n", frames_in(db));
    bu_stop(pid, NULL);

    if (mosq) {
        char mconf[160];
        FILE *f;
        snprintf(mconf, sizeof(mconf), "%s/mosquitto.conf", dir);
        f = fopen(mconf, "w");
        if (f) {
            fprintf(f,
                    "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "log_dest none\n",
                    20000 + (int)(getpid() % 20000));
            fclose(f);
            char *args[] = {(char *)mosq, "-c", mconf, NULL};
            pid = bu_spawn(args, NULL);
            bu_sleep_ms(2000);
            sample("mosquitto idle (reference):", pid, 0);
            bu_stop(pid, NULL);
        }
    }
    printf("kpud RSS with one simulated board after %u s: %ld KiB = %.2f x the 4096 KiB goal\n",
           seconds, rss, (double)rss / 4096.0);
    bu_rm_rf(dir);
    return 0;
}
