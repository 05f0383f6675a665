/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the local-client benchmarks (bench_ingest, bench_fanout,
 * bench_query, bench_rss): clocks, child processes (spawn, wait for a socket, CPU time
 * and RSS from /proc, stop), percentiles, and a kpud configuration file that lets the
 * benchmark's user connect. Header-only (static functions) so each benchmark stays one
 * file plus this.
 */
#ifndef KPU_BENCH_UTIL_H
#define KPU_BENCH_UTIL_H

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t bu_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int64_t bu_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void bu_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Start argv[0] with argv; stdout and stderr go to log (NULL = inherit). Returns pid or -1. */
static inline pid_t bu_spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (log) {
            FILE *f = fopen(log, "w");
            if (f) {
                dup2(fileno(f), 1);
                dup2(fileno(f), 2);
            }
        }
        execv(argv[0], argv);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Wait until path exists (a socket being created) or timeout_ms passes, or pid died.
 * Returns 0 or -1. */
static inline int bu_wait_path(const char *path, pid_t pid, unsigned timeout_ms)
{
    uint64_t end = bu_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    struct stat st;
    int status;

    while (bu_mono_ns() < end) {
        if (stat(path, &st) == 0)
            return 0;
        if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid)
            return -1;
        bu_sleep_ms(10);
    }
    return -1;
}

/* CPU time (user + system) of pid so far, in seconds, from /proc/PID/stat; -1 on error. */
static inline double bu_proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    p = strrchr(buf, ')'); /* comm may hold spaces; fields 14, 15 follow it */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU time of the calling process (all threads), seconds. */
static inline double bu_self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* A "Key:   N kB" line of /proc/PID/status, in KiB; -1 if absent. */
static inline long bu_proc_status_kb(pid_t pid, const char *key)
{
    char path[64], line[256];
    size_t kl = strlen(key);
    long v = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* SIGTERM pid and reap it; *cpu_s (may be NULL) gets its total CPU time. Returns the exit
 * status (or 128 + signal). A child still alive after 20 s gets SIGKILL. */
static inline int bu_stop(pid_t pid, double *cpu_s)
{
    struct rusage ru;
    int status = 0;
    uint64_t end;

    if (pid <= 0)
        return -1;
    kill(pid, SIGTERM);
    end = bu_mono_ns() + 20000000000ull;
    while (wait4(pid, &status, WNOHANG, &ru) == 0) {
        if (bu_mono_ns() > end) {
            kill(pid, SIGKILL);
            wait4(pid, &status, 0, &ru);
            break;
        }
        bu_sleep_ms(5);
    }
    if (cpu_s)
        *cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static inline int bu_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentile p (0..100) of v[0..n) in microseconds after sorting v in place (ns values). */
static inline double bu_pct_us(uint64_t *v, size_t n, double p)
{
    size_t i;
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), bu_cmp_u64);
    i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return (double)v[i < n ? i : n - 1] / 1000.0;
}

/* Write dir/kpud.conf letting any local user read and administer (the benchmark user
 * need not be in the kpu groups) with max_clients clients. Returns 0 or -1. */
static inline int bu_kpud_conf(const char *dir, unsigned max_clients, char *path, size_t len)
{
    FILE *f;
    snprintf(path, len, "%s/kpud.conf", dir);
    f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "[ipc]\nreader_group =\nadmin_group =\nmax_clients = %u\n", max_clients);
    return fclose(f) == 0 ? 0 : -1;
}

/* Print the machine's load averages and CPU count: these figures are only comparable
 * within one run, and a loaded machine shows in the tails. */
static inline void bu_print_load(void)
{
    double l1 = 0, l5 = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf", &l1, &l5) != 2)
            l1 = l5 = -1;
        fclose(f);
    }
    printf("machine: %ld CPUs, load average %.2f (1 min) %.2f (5 min)\n",
           sysconf(_SC_NPROCESSORS_ONLN), l1, l5);
}

/* rm -rf dir (a temporary folder this benchmark made). */
static inline void bu_rm_rf(const char *dir)
{
    char cmd[512];
    if (strncmp(dir, "/tmp/", 5) != 0)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

#endif /* KPU_BENCH_UTIL_H */
