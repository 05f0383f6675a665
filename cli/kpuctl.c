/* SPDX-License-Identifier: MIT */
/*
 * kpuctl: the command-line client of kpud. This file holds main(), the global options
 * (--socket, --json, --timeout, anywhere on the line), the verb table (add a verb: one
 * cmd_<verb>.c and one row here), the exit-code mapping and the helpers shared by verbs.
 */
#define _GNU_SOURCE
#include "kpuctl.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct kpuctl_verb verbs[] = {
    {"status", cmd_status, "", "daemon, devices and counters at a glance"},
    {"devices", cmd_devices, "", "list the boards"},
    {"watch", cmd_watch, "[--count N] [--seconds T] [filter]",
     "live detections (NDJSON with --json)"},
    {"query", cmd_query, "[--since T] [--until T] [--limit N] [--order newest|oldest] [filter]",
     "stored detections"},
    {"stats", cmd_stats, "[--prometheus]", "daemon counters"},
    {"snapshot", cmd_snapshot, "DEVICE -o FILE.png|FILE.ppm [--boxes]", "save the current frame"},
    {"config", cmd_config, "get DEVICE | set DEVICE KEY=VALUE... [--persist]",
     "read or change detection settings"},
    {"model", cmd_model,
     "list [--device D] | upload FILE --device D [--name N] [--manifest F] | select DEVICE NAME "
     "| remove NAME [--device D] | inspect FILE | fetch NAME [-o DIR] [--url URL] [--force]",
     "manage models"},
    {"reset", cmd_reset, "DEVICE [--hard]", "restart a board"},
    {"record", cmd_record, "start DEVICE [-o NAME] [--notes TEXT] | stop DEVICE",
     "capture a board's raw link"},
    {"replay", cmd_replay, "FILE", "replay a capture (through kpud)"},
    {"retention", cmd_retention, "show | set [--max-age 30d] [--max-bytes 10G] | apply [--dry-run]",
     "history retention"},
    {"agent", cmd_agent, "version|boot|flash DEVICE", "the board's agent firmware"},
    {"debuginfo", cmd_debuginfo, "", "everything a bug report needs"},
    {"version", cmd_version, "", "versions of kpuctl, the library, kpud and the protocol"},
};

#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

static const struct kpuctl_verb *find_verb(const char *name)
{
    for (size_t i = 0; i < N_VERBS; i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kpuctl [--socket PATH] [--json] [--timeout MS] VERB [ARGS]\n\nverbs:\n");
    for (size_t i = 0; i < N_VERBS; i++)
        fprintf(f, "  %-10s %s\n             %s %s\n", verbs[i].name, verbs[i].summary,
                verbs[i].name, verbs[i].usage);
    fprintf(f, "\nfilter options (watch, query): --device ID, --label NAME, --class N (each\n"
               "repeatable), --min-score S (0..1), --region X,Y,W,H (box centre inside)\n"
               "times: now, 10m / 2h / 7d ago, 2026-11-27, 2026-11-27T10:00[:SS][Z], @UNIXSECONDS\n"
               "\nsocket: --socket, else $KPUD_SOCKET, else $XDG_RUNTIME_DIR/kpud.sock (not root,\n"
               "if it exists), else /run/kpud/kpud.sock\n"
               "\nexit codes:\n"
               "  0  ok\n  1  usage error\n  2  daemon unreachable\n  3  device absent or offline\n"
               "  4  permission denied\n  5  protocol mismatch\n"
               "  6  device or daemon error (the message says which)\n");
}

int kpuctl_exit_code(int err)
{
    switch (err) {
    case 0:
        return KPUCTL_EXIT_OK;
    case KPU_CLIENT_EINVAL:
        return KPUCTL_EXIT_USAGE;
    case KPU_CLIENT_ECONNECT:
    case KPU_CLIENT_ECLOSED:
    case KPU_CLIENT_EIO:
    case KPU_CLIENT_ENOTCONN:
    case KPU_CLIENT_ETIMEDOUT:
        return KPUCTL_EXIT_UNREACHABLE;
    case KPU_CLIENT_ENODEV:
    case KPU_CLIENT_EOFFLINE:
        return KPUCTL_EXIT_NO_DEVICE;
    case KPU_CLIENT_EACCES:
        return KPUCTL_EXIT_PERMISSION;
    case KPU_CLIENT_EVERSION:
    case KPU_CLIENT_EPROTO:
        return KPUCTL_EXIT_PROTOCOL;
    default:
        return KPUCTL_EXIT_DEVICE;
    }
}

int kpuctl_fail(struct kpuctl *k, const char *what, int err)
{
    const char *text = k->client ? kpu_client_last_error_text(k->client) : "";
    const char *hint = k->client ? kpu_client_last_error_hint(k->client) : "";

    if (k->json) {
        /* Scripts reading stdout see the failure too, as one object. */
        printf("{\"error\":{\"code\":\"%s\",\"message\":", kpu_client_err_name(err));
        kpuctl_json_str(stdout, kpu_client_strerror(err));
        printf(",\"text\":");
        kpuctl_json_str(stdout, text);
        printf(",\"hint\":");
        kpuctl_json_str(stdout, hint);
        printf(",\"exit\":%d}}\n", kpuctl_exit_code(err));
    }
    fprintf(stderr, "kpuctl %s: %s: %s%s%s\n", k->verb, what, kpu_client_strerror(err),
            text[0] ? ": " : "", text);
    if (hint[0])
        fprintf(stderr, "  hint: %s\n", hint);
    return kpuctl_exit_code(err);
}

int kpuctl_usage_error(struct kpuctl *k, const char *fmt, ...)
{
    const struct kpuctl_verb *v = find_verb(k->verb);
    va_list ap;

    fprintf(stderr, "kpuctl %s: ", k->verb);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: kpuctl %s %s\n", k->verb, v ? v->usage : "");
    return KPUCTL_EXIT_USAGE;
}

int kpuctl_connect(struct kpuctl *k)
{
    struct kpu_client_opts o = {0};
    int r;

    if (k->client)
        return 0;
    o.socket_path = k->socket;
    o.client_name = "kpuctl";
    o.timeout_ms = k->timeout_ms;
    r = kpu_client_open(&o, &k->client);
    if (r < 0) {
        char path[256];
        const char *text = kpu_client_open_error_text(), *hint = kpu_client_open_error_hint();
        if (k->socket)
            snprintf(path, sizeof(path), "%s", k->socket);
        else if (kpu_client_default_socket(path, sizeof(path)) < 0)
            snprintf(path, sizeof(path), "?");
        fprintf(stderr, "kpuctl %s: cannot talk to kpud at %s: %s%s%s\n", k->verb, path,
                kpu_client_strerror(r), text[0] ? ": " : "", text);
        if (hint[0])
            fprintf(stderr, "  hint: %s\n", hint);
        else if (r == KPU_CLIENT_ECONNECT)
            fprintf(stderr, "  hint: is kpud running? (systemctl status kpud) Use --socket or "
                            "KPUD_SOCKET for another socket.\n");
        else if (r == KPU_CLIENT_EACCES)
            fprintf(stderr, "  hint: add yourself to kpud's group (e.g. kpu) and log in again\n");
        return kpuctl_exit_code(r);
    }
    return 0;
}

int kpuctl_print_reply_json(struct kpuctl *k)
{
    char *json;
    int r = kpu_client_last_reply_json(k->client, &json);
    if (r < 0)
        return kpuctl_fail(k, "rendering JSON", r);
    printf("%s\n", json);
    kpu_client_free(json);
    return 0;
}

void kpuctl_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int64_t kpuctl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

char *kpuctl_format_time(int64_t ns, char *buf, size_t size)
{
    time_t s = (time_t)(ns / 1000000000ll);
    struct tm tm;
    char tmp[32];

    if (!localtime_r(&s, &tm) || !strftime(tmp, sizeof(tmp), "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(tmp, sizeof(tmp), "%lld", (long long)s);
    snprintf(buf, size, "%s.%03d", tmp, (int)((ns / 1000000) % 1000));
    return buf;
}

int kpuctl_parse_duration(const char *s, uint64_t *seconds)
{
    char *end;
    unsigned long long v;
    uint64_t mul = 1;

    if (!s || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    if (*end) {
        switch (*end) {
        case 's':
            mul = 1;
            break;
        case 'm':
            mul = 60;
            break;
        case 'h':
            mul = 3600;
            break;
        case 'd':
            mul = 86400;
            break;
        case 'w':
            mul = 7 * 86400;
            break;
        default:
            return -1;
        }
        if (end[1])
            return -1;
    }
    if (v > UINT64_MAX / mul)
        return -1;
    *seconds = v * mul;
    return 0;
}

int kpuctl_parse_size(const char *s, uint64_t *bytes)
{
    char *end;
    unsigned long long v;
    uint64_t mul = 1;

    if (!s || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    if (*end) {
        switch (toupper((unsigned char)*end)) {
        case 'K':
            mul = 1024ull;
            break;
        case 'M':
            mul = 1024ull * 1024;
            break;
        case 'G':
            mul = 1024ull * 1024 * 1024;
            break;
        case 'T':
            mul = 1024ull * 1024 * 1024 * 1024;
            break;
        default:
            return -1;
        }
        if (end[1] && !(toupper((unsigned char)end[1]) == 'B' && !end[2]) &&
            !(end[1] == 'i' && end[2] == 'B' && !end[3]))
            return -1;
    }
    if (v > UINT64_MAX / mul)
        return -1;
    *bytes = v * mul;
    return 0;
}

int kpuctl_parse_time(const char *s, int64_t now_ns, int64_t *ns)
{
    struct tm tm;
    const char *end;
    uint64_t secs;

    if (!s || !*s)
        return -1;
    if (strcmp(s, "now") == 0) {
        *ns = now_ns;
        return 0;
    }
    if (s[0] == '@') {
        char *e;
        long long v;
        errno = 0;
        v = strtoll(s + 1, &e, 10);
        if (errno || e == s + 1 || *e || v < 0 || v > INT64_MAX / 1000000000ll)
            return -1;
        *ns = (int64_t)v * 1000000000ll;
        return 0;
    }
    if (kpuctl_parse_duration(s, &secs) == 0 && strchr(s, '-') == NULL) {
        if (secs > (uint64_t)(now_ns / 1000000000ll))
            return -1;
        *ns = now_ns - (int64_t)secs * 1000000000ll;
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%d", &tm);
    if (!end)
        return -1;
    if (*end == 'T' || *end == ' ') {
        const char *e2 = strptime(end + 1, "%H:%M:%S", &tm);
        if (!e2)
            e2 = strptime(end + 1, "%H:%M", &tm);
        if (!e2)
            return -1;
        end = e2;
    }
    if (*end == 'Z' && !end[1]) {
        time_t t = timegm(&tm);
        if (t == (time_t)-1)
            return -1;
        *ns = (int64_t)t * 1000000000ll;
        return 0;
    }
    if (*end)
        return -1;
    tm.tm_isdst = -1;
    {
        time_t t = mktime(&tm);
        if (t == (time_t)-1)
            return -1;
        *ns = (int64_t)t * 1000000000ll;
    }
    return 0;
}

int kpuctl_parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;
    if (!s || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int kpuctl_parse_float(const char *s, float *out)
{
    char *end;
    float v;
    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtof(s, &end);
    if (errno || *end || isnan(v) || isinf(v))
        return -1;
    *out = v;
    return 0;
}

int kpuctl_parse_rect(const char *s, struct kpu_client_rect *r)
{
    unsigned x, y, w, h;
    char tail;
    if (!s || sscanf(s, "%u,%u,%u,%u%c", &x, &y, &w, &h, &tail) != 4)
        return -1;
    r->x = x;
    r->y = y;
    r->w = w;
    r->h = h;
    return 0;
}

int kpuctl_filter_option(struct kpuctl *k, struct kpuctl_filter *flt, const char *opt,
                         const char *val)
{
    struct kpu_client_filter *f = &flt->f;

    f->devices = flt->devices;
    f->labels = flt->labels;
    f->class_ids = flt->classes;
    if (strcmp(opt, "device") == 0) {
        if (f->n_devices == KPUCTL_MAX_LIST)
            return kpuctl_usage_error(k, "too many --device"), -1;
        flt->devices[f->n_devices++] = val;
    } else if (strcmp(opt, "label") == 0) {
        if (f->n_labels == KPUCTL_MAX_LIST)
            return kpuctl_usage_error(k, "too many --label"), -1;
        flt->labels[f->n_labels++] = val;
    } else if (strcmp(opt, "class") == 0) {
        if (f->n_class_ids == KPUCTL_MAX_LIST)
            return kpuctl_usage_error(k, "too many --class"), -1;
        if (kpuctl_parse_u32(val, &flt->classes[f->n_class_ids]) < 0)
            return kpuctl_usage_error(k, "--class wants a class id, got '%s'", val), -1;
        f->n_class_ids++;
    } else if (strcmp(opt, "min-score") == 0) {
        if (kpuctl_parse_float(val, &f->min_score) < 0 || f->min_score < 0 || f->min_score > 1)
            return kpuctl_usage_error(k, "--min-score wants 0..1, got '%s'", val), -1;
    } else if (strcmp(opt, "region") == 0) {
        if (kpuctl_parse_rect(val, &f->region) < 0)
            return kpuctl_usage_error(k, "--region wants X,Y,W,H, got '%s'", val), -1;
        f->has_region = 1;
    } else {
        return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    struct kpuctl k = {0};
    const struct kpuctl_verb *v;
    char **rest;
    int n = 0, r;

    k.tty = isatty(STDOUT_FILENO);
    rest = calloc((size_t)argc + 1, sizeof(char *));
    if (!rest)
        return KPUCTL_EXIT_DEVICE;
    /* Global options may appear anywhere; what remains is the verb and its arguments. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            k.json = 1;
        } else if (strcmp(a, "--socket") == 0 || strcmp(a, "--timeout") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "kpuctl: %s needs a value\n", a);
                free(rest);
                return KPUCTL_EXIT_USAGE;
            }
            if (a[2] == 's') {
                k.socket = argv[++i];
            } else {
                uint32_t ms;
                if (kpuctl_parse_u32(argv[++i], &ms) < 0 || ms > 0x7fffffff) {
                    fprintf(stderr, "kpuctl: --timeout wants milliseconds\n");
                    free(rest);
                    return KPUCTL_EXIT_USAGE;
                }
                k.timeout_ms = (int)ms;
            }
        } else if (strncmp(a, "--socket=", 9) == 0) {
            k.socket = a + 9;
        } else if (n == 0 &&
                   (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "help") == 0)) {
            usage(stdout);
            free(rest);
            return KPUCTL_EXIT_OK;
        } else if (n == 0 && strcmp(a, "--version") == 0) {
            rest[n++] = (char *)"version";
        } else {
            rest[n++] = argv[i];
        }
    }
    if (n == 0) {
        usage(stderr);
        free(rest);
        return KPUCTL_EXIT_USAGE;
    }
    v = find_verb(rest[0]);
    if (!v) {
        fprintf(stderr, "kpuctl: unknown verb '%s' (kpuctl --help lists them)\n", rest[0]);
        free(rest);
        return KPUCTL_EXIT_USAGE;
    }
    k.verb = v->name;
    r = v->run(&k, n, rest);
    kpu_client_close(k.client);
    free(rest);
    if (fflush(stdout) != 0 && r == 0)
        r = KPUCTL_EXIT_DEVICE;
    return r;
}
