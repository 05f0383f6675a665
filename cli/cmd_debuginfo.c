/* SPDX-License-Identifier: MIT */
/* kpuctl debuginfo: what a bug report needs in one go (gpsdebuginfo's idea): versions, the
 * configuration file, the socket path with its permissions and this user's ids and groups,
 * the serial ports with their udev properties, the database's size and integrity, kpud's
 * last log lines, and whether kpud answers and with what role, its counters and boards.
 * Each part reports its own failure and the rest goes on. Only paths, ids, serial numbers
 * and settings are shown: kpud's configuration holds no secrets, and udev properties are
 * filtered to the ones that identify a bridge. Outside programs (udevadm, sqlite3,
 * journalctl) are used when installed, run directly (no shell) with a time limit. */
#include "kpuctl.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/kpud/kpud.conf" /* daemon/config.h KPUD_DEFAULT_CONFIG */
#define DEFAULT_STATE_DIR "/var/lib/kpud"    /* daemon/config.c defaults */
#define TOOL_TIMEOUT_MS 5000                 /* per outside program */
#define TOOL_OUTPUT_MAX 16384                /* bytes kept of its output */
#define JOURNAL_LINES "20"
#define READER_GROUP "kpu"      /* packaging/sysusers/kpud.conf */
#define ADMIN_GROUP "kpu-admin" /* packaging/sysusers/kpud.conf */

/* udev properties worth a bug report: what the bridge is, and what our rule set. */
static const char *const udev_keys[] = {
    "DEVNAME",
    "ID_VENDOR_ID",
    "ID_MODEL_ID",
    "ID_VENDOR",
    "ID_MODEL",
    "ID_SERIAL_SHORT",
    "ID_USB_INTERFACE_NUM",
    "ID_PATH",
    "ID_USB_DRIVER",
    "KPUD_CANDIDATE",
    "KPUD_BRIDGE",
    "ID_MM_DEVICE_IGNORE",
    "TAGS",
    NULL,
};

/* The path of program name in PATH (or the usual sbin folders), or NULL. */
static const char *find_tool(const char *name, char *buf, size_t cap)
{
    static const char *const dirs[] = {"/usr/bin", "/bin", "/usr/sbin", "/sbin", NULL};
    for (int i = 0; dirs[i]; i++) {
        snprintf(buf, cap, "%s/%s", dirs[i], name);
        if (access(buf, X_OK) == 0)
            return buf;
    }
    return NULL;
}

/* Run argv (argv[0] an absolute path) with stdout and stderr into out (NUL-terminated,
 * truncated at cap - 1), killing it after TOOL_TIMEOUT_MS. Returns its exit status, or -1
 * if it could not run or was killed. */
static int run_tool(char *const argv[], char *out, size_t cap)
{
    int p[2], st = 0, devnull;
    size_t n = 0;
    pid_t pid;
    struct timespec t0, t;

    out[0] = 0;
    if (pipe(p) < 0)
        return -1;
    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        long left;
        ssize_t r;
        char sink[512];

        clock_gettime(CLOCK_MONOTONIC, &t);
        left =
            TOOL_TIMEOUT_MS - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        if (n + 1 < cap)
            r = read(p[0], out + n, cap - 1 - n);
        else
            r = read(p[0], sink, sizeof(sink));
        if (r <= 0)
            break;
        if (n + 1 < cap)
            n += (size_t)r;
    }
    out[n] = 0;
    close(p[0]);
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* Collected host-side facts, printed as text or JSON. */
struct facts {
    char config[4096]; /* the configuration's setting lines (no comments) */
    int config_err;    /* errno reading it, 0 if read */
    char config_path[256];
    char db_path[512];
    long long db_bytes, wal_bytes; /* -1: cannot stat */
    char integrity[256];           /* quick_check result, or why there is none */
    char udev[8192];               /* "== /dev/x" blocks of filtered properties */
    char journal[TOOL_OUTPUT_MAX]; /* last log lines, or why there are none */
    char groups[512];              /* this user's group names */
    int reader, admin;             /* member of the reader / admin group */
};

static void append(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *dst, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(dst);
    va_list ap;
    if (n + 1 >= cap)
        return;
    va_start(ap, fmt);
    vsnprintf(dst + n, cap - n, fmt, ap);
    va_end(ap);
}

/* Trim spaces at both ends in place. */
static char *trim(char *p)
{
    char *e;
    while (*p == ' ' || *p == '\t')
        p++;
    e = p + strlen(p);
    while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = 0;
    return p;
}

/* The configuration's setting lines, and the database path it implies. */
static void read_config(struct facts *f)
{
    const char *env = getenv("KPUD_CONFIG");
    char line[1024], section[64] = "", state_dir[400] = DEFAULT_STATE_DIR, database[400] = "";
    FILE *in;

    snprintf(f->config_path, sizeof(f->config_path), "%s", env && *env ? env : DEFAULT_CONFIG);
    in = fopen(f->config_path, "re");
    f->config_err = in ? 0 : errno;
    while (in && fgets(line, sizeof(line), in)) {
        char *p = trim(line), *eq;
        if (!*p || *p == '#' || *p == ';')
            continue;
        append(f->config, sizeof(f->config), "%s\n", p);
        if (*p == '[') {
            snprintf(section, sizeof(section), "%.*s", (int)strcspn(p + 1, "]"), p + 1);
            continue;
        }
        eq = strchr(p, '=');
        if (!eq)
            continue;
        *eq = 0;
        if (!strcmp(section, "daemon") && !strcmp(trim(p), "state_dir"))
            snprintf(state_dir, sizeof(state_dir), "%s", trim(eq + 1));
        else if (!strcmp(section, "store") && !strcmp(trim(p), "database"))
            snprintf(database, sizeof(database), "%s", trim(eq + 1));
    }
    if (in)
        fclose(in);
    if (database[0])
        snprintf(f->db_path, sizeof(f->db_path), "%s", database);
    else
        snprintf(f->db_path, sizeof(f->db_path), "%s/kpud.db", state_dir);
}

static void check_database(struct facts *f)
{
    char wal[600], tool[64];
    struct stat st;
    int db_errno;

    f->db_bytes = stat(f->db_path, &st) == 0 ? (long long)st.st_size : -1;
    db_errno = errno;
    snprintf(wal, sizeof(wal), "%s-wal", f->db_path);
    f->wal_bytes = stat(wal, &st) == 0 ? (long long)st.st_size : -1;
    if (f->db_bytes < 0) {
        snprintf(f->integrity, sizeof(f->integrity), "not checked: %s", strerror(db_errno));
    } else if (access(f->db_path, R_OK) != 0) {
        snprintf(f->integrity, sizeof(f->integrity),
                 "not checked: the file is not readable by you (run as root)");
    } else if (!find_tool("sqlite3", tool, sizeof(tool))) {
        snprintf(f->integrity, sizeof(f->integrity), "not checked: sqlite3 not installed");
    } else {
        char *argv[] = {tool, "-readonly", f->db_path, "PRAGMA quick_check;", NULL};
        char out[256];
        int r = run_tool(argv, out, sizeof(out));
        snprintf(f->integrity, sizeof(f->integrity), "%s%s",
                 r == 0 ? "" : "sqlite3 failed: ", trim(out));
    }
}

/* udev properties of every USB serial port there is (a board kpud does not see is
 * exactly what a bug report is about). */
static void check_udev(struct facts *f)
{
    char tool[64], out[TOOL_OUTPUT_MAX];
    glob_t g;

    if (!find_tool("udevadm", tool, sizeof(tool))) {
        snprintf(f->udev, sizeof(f->udev), "udevadm not installed\n");
        return;
    }
    memset(&g, 0, sizeof(g));
    glob("/dev/ttyUSB*", 0, NULL, &g);
    glob("/dev/ttyACM*", GLOB_APPEND, NULL, &g);
    if (g.gl_pathc == 0)
        append(f->udev, sizeof(f->udev), "no /dev/ttyUSB* or /dev/ttyACM* ports\n");
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char name[300];
        char *argv[] = {tool, "info", "--query=property", name, NULL};
        snprintf(name, sizeof(name), "--name=%s", g.gl_pathv[i]);
        append(f->udev, sizeof(f->udev), "%s:\n", g.gl_pathv[i]);
        if (run_tool(argv, out, sizeof(out)) != 0) {
            append(f->udev, sizeof(f->udev), "  udevadm info failed\n");
            continue;
        }
        for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
            for (int k = 0; udev_keys[k]; k++) {
                size_t kl = strlen(udev_keys[k]);
                if (!strncmp(l, udev_keys[k], kl) && l[kl] == '=')
                    append(f->udev, sizeof(f->udev), "  %s\n", l);
            }
    }
    globfree(&g);
}

static void check_journal(struct facts *f)
{
    char tool[64];
    char *argv[] = {tool, "-u", "kpud", "-n", JOURNAL_LINES, "--no-pager", "-o", "short-iso", NULL};

    if (!find_tool("journalctl", tool, sizeof(tool))) {
        snprintf(f->journal, sizeof(f->journal), "journalctl not installed\n");
        return;
    }
    if (run_tool(argv, f->journal, sizeof(f->journal)) < 0)
        append(f->journal, sizeof(f->journal), "(journalctl failed)\n");
}

static void check_groups(struct facts *f)
{
    gid_t groups[256];
    int n = getgroups((int)(sizeof(groups) / sizeof(groups[0])), groups);
    struct group *gr;

    for (int i = -1; i < n; i++) {
        gid_t g = i < 0 ? getegid() : groups[i];
        if (i >= 0 && g == getegid())
            continue;
        gr = getgrgid(g);
        append(f->groups, sizeof(f->groups), "%s%s", f->groups[0] ? " " : "",
               gr ? gr->gr_name : "?");
        if (gr && !strcmp(gr->gr_name, READER_GROUP))
            f->reader = 1;
        if (gr && !strcmp(gr->gr_name, ADMIN_GROUP))
            f->admin = 1;
    }
}

static void gather(struct facts *f)
{
    memset(f, 0, sizeof(*f));
    read_config(f);
    check_database(f);
    check_udev(f);
    check_journal(f);
    check_groups(f);
}

/* A multi-line text as a JSON array of its lines. */
static void json_lines(const char *text)
{
    char *copy = strdup(text ? text : ""), *save = NULL;
    int first = 1;

    printf("[");
    for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
        printf("%s", first ? "" : ",");
        kpuctl_json_str(stdout, l);
        first = 0;
    }
    printf("]");
    free(copy);
}

static void print_facts_json(const struct facts *f)
{
    printf(",\"host\":{\"config\":{\"path\":");
    kpuctl_json_str(stdout, f->config_path);
    if (f->config_err)
        printf(",\"error\":\"%s\"}", strerror(f->config_err));
    else {
        printf(",\"lines\":");
        json_lines(f->config);
        printf("}");
    }
    printf(",\"groups\":");
    kpuctl_json_str(stdout, f->groups);
    printf(",\"reader_group\":%s,\"admin_group\":%s,\"database\":{\"path\":",
           f->reader ? "true" : "false", f->admin ? "true" : "false");
    kpuctl_json_str(stdout, f->db_path);
    printf(",\"bytes\":%lld,\"wal_bytes\":%lld,\"integrity\":", f->db_bytes, f->wal_bytes);
    kpuctl_json_str(stdout, f->integrity);
    printf("},\"udev\":");
    json_lines(f->udev);
    printf(",\"journal\":");
    json_lines(f->journal);
    printf("}");
}

static void print_facts_text(const struct facts *f)
{
    printf("groups: %s (%s: %s, %s: %s)\n", f->groups, READER_GROUP, f->reader ? "yes" : "no",
           ADMIN_GROUP, f->admin ? "yes" : "no");
    printf("== configuration\n%s", f->config_path);
    if (f->config_err)
        printf(": %s (kpud then runs on its defaults)\n", strerror(f->config_err));
    else
        printf("\n%s", f->config[0] ? f->config : "(every key at its default)\n");
    printf("== database\n%s: ", f->db_path);
    if (f->db_bytes >= 0)
        printf("%lld B, WAL %lld B\n", f->db_bytes, f->wal_bytes < 0 ? 0 : f->wal_bytes);
    else
        printf("cannot stat\n");
    printf("integrity: %s\n", f->integrity);
    printf("== serial ports (udev)\n%s", f->udev);
    printf("== log (journalctl -u kpud -n %s)\n%s", JOURNAL_LINES, f->journal);
    if (f->journal[0] && f->journal[strlen(f->journal) - 1] != '\n')
        printf("\n");
}

/* One JSON object: versions, socket, user, and the daemon's hello, stats and devices
 * (null where that part failed). */
static int debuginfo_json(struct kpuctl *k, const char *path, const struct facts *facts)
{
    const struct kpu_client_server_info *si;
    struct kpu_client_stats s;
    struct kpu_client_device *d;
    struct stat st;
    char *json;
    size_t n;
    int r;

    printf("{\"kpuctl\":\"%s\",\"library\":\"%s\",\"protocol\":\"%d.%d\",\"socket\":{\"path\":",
           KPUCTL_VERSION, kpu_client_version_string(), KPU_CLIENT_PROTOCOL_MAJOR,
           KPU_CLIENT_PROTOCOL_MINOR);
    kpuctl_json_str(stdout, path);
    if (stat(path, &st) == 0)
        printf(",\"mode\":\"%04o\",\"uid\":%u,\"gid\":%u,\"is_socket\":%s}", st.st_mode & 07777,
               (unsigned)st.st_uid, (unsigned)st.st_gid, S_ISSOCK(st.st_mode) ? "true" : "false");
    else
        printf(",\"error\":\"cannot stat\"}");
    printf(",\"user\":{\"uid\":%u,\"gid\":%u}", (unsigned)geteuid(), (unsigned)getegid());
    print_facts_json(facts);
    printf(",\"daemon\":");
    r = kpuctl_connect(k);
    if (r) {
        printf("null}\n");
        return r;
    }
    si = kpu_client_server_info(k->client);
    printf("{\"version\":");
    kpuctl_json_str(stdout, si->server_version);
    printf(",\"protocol\":\"%u.%u\",\"role\":\"%s\",\"max_frame\":%u,\"max_subscriptions\":%u,"
           "\"max_page_rows\":%u,\"queue_messages\":%u,\"queue_bytes\":%llu,\"features\":[",
           si->protocol_major, si->protocol_minor,
           si->role == KPU_CLIENT_ROLE_ADMIN ? "admin" : "reader", si->max_frame,
           si->max_subscriptions, si->max_page_rows, si->queue_messages,
           (unsigned long long)si->queue_bytes);
    for (size_t i = 0; i < si->n_features; i++) {
        if (i)
            printf(",");
        kpuctl_json_str(stdout, si->features[i]);
    }
    printf("]},\"stats\":");
    if (kpu_client_get_stats(k->client, &s) == 0 &&
        kpu_client_last_reply_json(k->client, &json) == 0) {
        printf("%s", json);
        kpu_client_free(json);
    } else {
        printf("null");
    }
    printf(",\"devices\":");
    if (kpu_client_list_devices(k->client, &d, &n) == 0 &&
        kpu_client_last_reply_json(k->client, &json) == 0) {
        printf("%s", json);
        kpu_client_free(json);
        kpu_client_free(d);
    } else {
        printf("null");
    }
    printf("}\n");
    return 0;
}

int cmd_debuginfo(struct kpuctl *k, int argc, char **argv)
{
    char path[256];
    struct stat st;
    struct group *gr;
    struct passwd *pw;
    const struct kpu_client_server_info *si;
    struct kpu_client_stats s;
    struct kpu_client_device *d;
    struct facts *facts;
    size_t n;
    int r;

    (void)argv;
    if (argc > 1)
        return kpuctl_usage_error(k, "takes no arguments");
    if (k->socket)
        snprintf(path, sizeof(path), "%s", k->socket);
    else if (kpu_client_default_socket(path, sizeof(path)) < 0)
        snprintf(path, sizeof(path), "?");
    facts = calloc(1, sizeof(*facts));
    if (!facts)
        return kpuctl_fail(k, "debuginfo", KPU_CLIENT_ENOMEM);
    gather(facts);
    if (k->json) {
        r = debuginfo_json(k, path, facts);
        free(facts);
        return r;
    }
    printf("== versions\nkpuctl %s, libkpu-client %s, protocol %d.%d\n", KPUCTL_VERSION,
           kpu_client_version_string(), KPU_CLIENT_PROTOCOL_MAJOR, KPU_CLIENT_PROTOCOL_MINOR);
    printf("== socket\n%s\n", path);
    if (stat(path, &st) == 0) {
        pw = getpwuid(st.st_uid);
        gr = getgrgid(st.st_gid);
        printf("mode %04o owner %s group %s%s\n", st.st_mode & 07777, pw ? pw->pw_name : "?",
               gr ? gr->gr_name : "?", S_ISSOCK(st.st_mode) ? "" : " (not a socket!)");
    } else {
        perror("  stat");
    }
    pw = getpwuid(geteuid());
    printf("you: uid %u (%s) gid %u\n", (unsigned)geteuid(), pw ? pw->pw_name : "?",
           (unsigned)getegid());
    print_facts_text(facts);
    free(facts);
    printf("== daemon\n");
    fflush(stdout);
    r = kpuctl_connect(k);
    if (r)
        return r;
    si = kpu_client_server_info(k->client);
    printf("kpud %s, protocol %u.%u, role %s, instance %s\n", si->server_version,
           si->protocol_major, si->protocol_minor,
           si->role == KPU_CLIENT_ROLE_ADMIN ? "admin" : "reader", si->instance_id);
    printf("limits: frame %u B, %u subscriptions, %u rows/page, queue %u msgs / %llu B\n",
           si->max_frame, si->max_subscriptions, si->max_page_rows, si->queue_messages,
           (unsigned long long)si->queue_bytes);
    printf("features:");
    for (size_t i = 0; i < si->n_features; i++)
        printf(" %s", si->features[i]);
    printf("\n== stats\n");
    if ((r = kpu_client_get_stats(k->client, &s)) == 0)
        printf("uptime %llu ms, %u devices, %u clients, %llu frames, %llu lost, %llu link errors, "
               "%llu dropped, db %llu B / %llu rows, rss %llu B\n",
               (unsigned long long)s.uptime_ms, s.devices, s.clients,
               (unsigned long long)s.frames_received, (unsigned long long)s.frames_lost,
               (unsigned long long)s.link_errors, (unsigned long long)s.events_dropped,
               (unsigned long long)s.db_bytes, (unsigned long long)s.db_rows,
               (unsigned long long)s.rss_bytes);
    else
        kpuctl_fail(k, "stats", r);
    printf("== devices\n");
    if ((r = kpu_client_list_devices(k->client, &d, &n)) == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s %s %s %s %s bridge=%s agent=%s model=%s frames=%llu lost=%llu "
                   "link_errors=%llu reconnects=%u reset=%s last_error=%s\n",
                   d[i].id, kpu_client_device_state_name(d[i].state), d[i].transport, d[i].path,
                   d[i].board, d[i].bridge, d[i].agent_version, d[i].model,
                   (unsigned long long)d[i].frames, (unsigned long long)d[i].frames_lost,
                   (unsigned long long)d[i].link_errors, d[i].reconnects, d[i].reset_cause,
                   d[i].last_error[0] ? d[i].last_error : "-");
        kpu_client_free(d);
    } else {
        kpuctl_fail(k, "devices", r);
    }
    return 0;
}
