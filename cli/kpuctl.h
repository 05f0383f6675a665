/* SPDX-License-Identifier: MIT */
/*
 * kpuctl internals shared by kpuctl.c and the cmd_<verb>.c files: the invocation context,
 * the stable exit codes, error reporting, argument helpers (times, numbers, filters) and
 * small JSON writers for the verbs that compose their own objects. kpuctl uses only
 * <kpu/client.h>; everything on the wire goes through libkpu-client.
 */
#ifndef KPUCTL_H
#define KPUCTL_H

#include <kpu/client.h>

#include <stdint.h>
#include <stdio.h>

/* Exit codes: stable, documented in --help and docs/kpuctl.md. */
#define KPUCTL_EXIT_OK 0
#define KPUCTL_EXIT_USAGE 1
#define KPUCTL_EXIT_UNREACHABLE 2
#define KPUCTL_EXIT_NO_DEVICE 3
#define KPUCTL_EXIT_PERMISSION 4
#define KPUCTL_EXIT_PROTOCOL 5
#define KPUCTL_EXIT_DEVICE 6

#define KPUCTL_VERSION "0.1.0"
#define KPUCTL_MAX_LIST 32 /* repeated --device / --label / --class values */

struct kpuctl {
    const char *verb;
    const char *socket; /* --socket, else NULL: the library's default ($KPUD_SOCKET, ...) */
    int json;           /* --json */
    int timeout_ms;     /* --timeout */
    int tty;            /* stdout is a terminal */
    kpu_client_t *client;
};

/* A verb: argv[0] is the verb itself; returns an exit code. */
struct kpuctl_verb {
    const char *name;
    int (*run)(struct kpuctl *k, int argc, char **argv);
    const char *usage;   /* one line of arguments */
    const char *summary; /* one line of what it does */
};

/* kpuctl_connect - open k->client if not open yet. Returns 0 or an exit code (after
 * printing the error). */
int kpuctl_connect(struct kpuctl *k);

/* kpuctl_fail - print "kpuctl VERB: what: error" plus the daemon's text and hint to stderr
 * and return the exit code for err. */
int kpuctl_fail(struct kpuctl *k, const char *what, int err);

/* kpuctl_exit_code - the exit code for a KPU_CLIENT_E* value. */
int kpuctl_exit_code(int err);

/* kpuctl_usage_error - print "kpuctl VERB: msg" and the verb's usage; returns 1. */
int kpuctl_usage_error(struct kpuctl *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* kpuctl_print_reply_json - print the last reply as one JSON line. Returns an exit code. */
int kpuctl_print_reply_json(struct kpuctl *k);

/*
 * kpuctl_parse_time - "now", a duration ago ("10m", "2h", "30s", "1d", "1w"),
 * "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS]" (local time, or UTC with a trailing Z) or
 * "@SECONDS" (Unix time). Sets *ns (Unix epoch nanoseconds). Returns 0 or -1.
 */
int kpuctl_parse_time(const char *s, int64_t now_ns, int64_t *ns);

/* kpuctl_parse_duration - "30", "30s", "10m", "2h", "7d", "1w" into seconds. 0 or -1. */
int kpuctl_parse_duration(const char *s, uint64_t *seconds);

/* kpuctl_parse_size - "1000", "64K", "10M", "1G" (powers of 1024) into bytes. 0 or -1. */
int kpuctl_parse_size(const char *s, uint64_t *bytes);

/* kpuctl_parse_u32 / _float - whole-string numbers. 0 or -1. */
int kpuctl_parse_u32(const char *s, uint32_t *out);
int kpuctl_parse_float(const char *s, float *out);

/* kpuctl_parse_rect - "x,y,w,h". 0 or -1. */
int kpuctl_parse_rect(const char *s, struct kpu_client_rect *r);

/* kpuctl_now_ns - CLOCK_REALTIME in nanoseconds. */
int64_t kpuctl_now_ns(void);

/* kpuctl_format_time - local "YYYY-MM-DD HH:MM:SS.mmm" of ns into buf. Returns buf. */
char *kpuctl_format_time(int64_t ns, char *buf, size_t size);

/* Options shared by watch and query: the detection filter built from --device, --label,
 * --class, --min-score and --region. */
struct kpuctl_filter {
    const char *devices[KPUCTL_MAX_LIST];
    const char *labels[KPUCTL_MAX_LIST];
    uint32_t classes[KPUCTL_MAX_LIST];
    struct kpu_client_filter f;
};

/* kpuctl_filter_option - apply one filter option (opt is the long name without dashes).
 * Returns 1 when it was a filter option and applied, 0 when not a filter option, -1 when
 * the value is bad (message printed). */
int kpuctl_filter_option(struct kpuctl *k, struct kpuctl_filter *flt, const char *opt,
                         const char *val);

/* JSON string writer (escaped, with quotes) to f. */
void kpuctl_json_str(FILE *f, const char *s);

/* The verbs (cmd_<verb>.c). */
int cmd_status(struct kpuctl *k, int argc, char **argv);
int cmd_devices(struct kpuctl *k, int argc, char **argv);
int cmd_watch(struct kpuctl *k, int argc, char **argv);
int cmd_query(struct kpuctl *k, int argc, char **argv);
int cmd_stats(struct kpuctl *k, int argc, char **argv);
int cmd_snapshot(struct kpuctl *k, int argc, char **argv);
int cmd_config(struct kpuctl *k, int argc, char **argv);
int cmd_model(struct kpuctl *k, int argc, char **argv);
/* kpuctl model fetch (cmd_model_fetch.c): argv[1] is "fetch". Returns an exit code. */
int cmd_model_fetch(struct kpuctl *k, int argc, char **argv);
int cmd_reset(struct kpuctl *k, int argc, char **argv);
int cmd_record(struct kpuctl *k, int argc, char **argv);
int cmd_replay(struct kpuctl *k, int argc, char **argv);
int cmd_retention(struct kpuctl *k, int argc, char **argv);
int cmd_agent(struct kpuctl *k, int argc, char **argv);
int cmd_debuginfo(struct kpuctl *k, int argc, char **argv);
int cmd_version(struct kpuctl *k, int argc, char **argv);

#endif /* KPUCTL_H */
