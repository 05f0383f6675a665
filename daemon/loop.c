/* SPDX-License-Identifier: MIT */
/*
 * kpud's libuv loop: start-up order, signal handling, shutdown order (see loop.h).
 *
 * Start: state dir -> store (database opened and migrated) -> IPC socket -> devices.
 * Stop (SIGTERM/SIGINT): devices closed (no more input) -> store closed (last batch
 * committed) -> IPC closed -> the loop runs until every handle is closed.
 *
 * systemd (Type=notify, packaging/systemd/kpud.service): READY=1 once the socket listens,
 * the database is migrated and the configured devices are opened (the first scan);
 * STATUS= lines as devices come and go; WATCHDOG=1 from a loop timer at half of
 * $WATCHDOG_USEC, so a stuck loop stops the pings and systemd restarts kpud; RELOADING=1
 * around SIGHUP; STOPPING=1 at shutdown.
 */
#include "loop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "devices.h"
#include "ipc_backend.h"
#include "log.h"
#include "sd_notify.h"
#include "store/store.h"

struct daemon {
    uv_loop_t *loop;
    struct kpud_config *cfg;
    struct kpud_store *store;
    struct kpud_devices *devices;
    struct kpud_ipc *ipc;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t watchdog;  /* WATCHDOG=1 pings; started only under a systemd watchdog */
    int watchdog_running; /* the timer is initialised (and must be closed) */
    char status[128];     /* the last STATUS= sent, to send only changes */
    int stopping;
    uint64_t last_detection_log_ms;
};

static void store_log(int priority, const char *msg, void *user)
{
    (void)user;
    kpud_log(priority, "store: %s", msg);
}

/* Each committed batch at debug level: the crash tests (tests/reliability) read these lines
 * to know what must survive a kill -9. */
static void store_committed(struct kpud_store *s, const struct kpud_store_batch_info *info,
                            void *user)
{
    struct kpud_store_counters c;

    (void)user;
    if (kpud_log_level() < LOG_DEBUG || !info->frames)
        return;
    kpud_store_get_counters(s, &c);
    log_debug("store: committed batch %llu: %u frames, %llu in total, up to session %lld frame %u",
              (unsigned long long)info->batch, info->frames, (unsigned long long)c.frames_committed,
              (long long)info->last_session_id, info->last_frame_seq);
}

static void on_detection(void *ctx, struct kpud_session *s, const Kpu__Link__V1__DetectionFrame *f,
                         int64_t host_ns)
{
    struct daemon *d = ctx;
    uint64_t now = uv_now(d->loop);

    kpud_ipc_detection(d->ipc, s, f, host_ns);
    /* A readable trace for people watching the log: at most one line a second. */
    if (f->n_boxes && now - d->last_detection_log_ms >= 1000 && kpud_log_level() >= LOG_INFO) {
        struct kpud_session_info info;
        const Kpu__Link__V1__Box *b = f->boxes[0];
        const char *label = kpud_devices_label(d->devices, s, b->class_id);
        kpud_session_get_info(s, &info);
        d->last_detection_log_ms = now;
        log_info("device %s: frame %u: %zu box%s, first %s %.2f (%d,%d)-(%d,%d)", info.id,
                 f->frame_seq, f->n_boxes, f->n_boxes == 1 ? "" : "es", *label ? label : "class",
                 b->score, b->x, b->y, b->x + (int)b->w, b->y + (int)b->h);
    }
}

static void shutdown_daemon(struct daemon *d, const char *why);

/* Tell systemd (`systemctl status kpud`) how the boards are doing, when that changed. */
static void notify_status(struct daemon *d, const char *extra)
{
    unsigned n = d->devices ? kpud_devices_count(d->devices) : 0, streaming = 0;
    char status[sizeof(d->status)];

    for (unsigned i = 0; i < n; i++) {
        struct kpud_session_info info;
        kpud_session_get_info(kpud_devices_at(d->devices, i), &info);
        streaming += info.state == KPUD_DEV_STREAMING;
    }
    snprintf(status, sizeof(status), "%u device%s, %u streaming, %u not ready; socket %.60s", n,
             n == 1 ? "" : "s", streaming, n - streaming, d->cfg->socket_path);
    if (!extra && !strcmp(status, d->status))
        return;
    memcpy(d->status, status, sizeof(status));
    kpud_sd_notifyf("%sSTATUS=%s", extra ? extra : "", status);
}

static void on_state(void *ctx, struct kpud_session *s, enum kpud_dev_state st, const char *reason)
{
    struct daemon *d = ctx;
    kpud_ipc_device_state(d->ipc, s, st, reason);
    if (!d->stopping)
        notify_status(d, NULL);
}

static void on_watchdog(uv_timer_t *t)
{
    kpud_sd_notify("WATCHDOG=1");
    (void)t;
}

/* Ping systemd's watchdog at half its period ($WATCHDOG_USEC), as sd_watchdog_enabled(3)
 * recommends; the pings come from the loop, so a blocked loop misses them. */
static void start_watchdog(struct daemon *d)
{
    uint64_t usec = kpud_sd_watchdog_usec(), ms;

    if (!usec)
        return;
    ms = usec / 2000;
    if (ms == 0)
        ms = 1;
    uv_timer_init(d->loop, &d->watchdog);
    d->watchdog_running = 1;
    uv_timer_start(&d->watchdog, on_watchdog, ms, ms);
    log_info("systemd watchdog: pinging every %llu ms", (unsigned long long)ms);
}

static void on_ended(void *ctx, struct kpud_session *s)
{
    struct daemon *d = ctx;
    (void)s;
    if (d->cfg->replay_exit)
        shutdown_daemon(d, "end of capture");
}

static void devices_closed(void *arg)
{
    struct daemon *d = arg;
    d->devices = NULL;
    if (d->store) {
        struct kpud_store_counters c;
        kpud_store_get_counters(d->store, &c);
        if (kpud_store_close(d->store) < 0)
            log_err("store: some rows could not be written before exit");
        log_info("store: %llu frames committed in %llu batches",
                 (unsigned long long)c.frames_committed, (unsigned long long)c.batches_committed);
        d->store = NULL;
    }
    kpud_ipc_close(d->ipc);
    if (d->watchdog_running)
        uv_close((uv_handle_t *)&d->watchdog, NULL);
    d->watchdog_running = 0;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
}

static void shutdown_daemon(struct daemon *d, const char *why)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    log_notice("%s: shutting down", why);
    kpud_sd_notify("STOPPING=1\nSTATUS=stopping: storing the last batch");
    if (d->devices)
        kpud_devices_close(d->devices, devices_closed, d);
    else
        devices_closed(d);
}

static void reload(struct daemon *d)
{
    struct kpud_config next;
    char err[320];
    int r;

    if (!d->cfg->config_path[0]) {
        log_notice("SIGHUP: no configuration file to re-read");
        return;
    }
    kpud_sd_notify("RELOADING=1\nSTATUS=reloading the configuration");
    kpud_config_defaults(&next);
    r = kpud_config_load(&next, d->cfg->config_path, err, sizeof(err));
    if (r < 0) {
        log_err("SIGHUP: %s; keeping the running configuration",
                r == -ENOENT ? "configuration file is gone" : err);
        notify_status(d, "READY=1\n");
        return;
    }
    /* What can change at run time: log level and the detection parameters. */
    kpud_log_set_level(next.log_level);
    d->cfg->log_level = next.log_level;
    d->cfg->threshold = next.threshold;
    d->cfg->nms = next.nms;
    d->cfg->max_boxes = next.max_boxes;
    d->cfg->fps_cap = next.fps_cap;
    for (unsigned i = 0; d->devices && i < kpud_devices_count(d->devices); i++) {
        struct kpud_session *s = kpud_devices_at(d->devices, i);
        struct kpud_session_config sc;
        kpud_session_get_config(s, &sc);
        sc.threshold = next.threshold;
        sc.nms = next.nms;
        sc.max_boxes = next.max_boxes;
        sc.fps_cap = next.fps_cap;
        if (kpud_session_set_config(s, &sc) < 0)
            log_err("SIGHUP: invalid detection parameters");
    }
    log_notice("SIGHUP: configuration re-read (threshold %.2f, nms %.2f, max_boxes %u)",
               next.threshold, next.nms, next.max_boxes);
    notify_status(d, "READY=1\n");
}

static void on_signal(uv_signal_t *h, int sig)
{
    struct daemon *d = h->data;
    if (sig == SIGHUP)
        reload(d);
    else
        shutdown_daemon(d, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/*
 * Give up what kpud no longer needs once its socket, database and devices are open
 * (docs/reliability.md, "Privileges"): no process of kpud or its children may gain
 * privileges again (no_new_privs: no setuid or file capabilities on exec), and every
 * capability goes, from the bounding set first (so a simulator started later has none
 * either) then from this process. A kpud started as root keeps uid 0, so files it owns
 * (state dir, socket, /dev/tty* of root) stay usable; what root could do beyond owner
 * rights (override file modes, chown, raw I/O, kill others) is gone. Under systemd
 * (packaging/systemd/kpud.service) kpud runs as user kpud with none of this to drop.
 */
static void drop_privileges(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        log_warn("privileges: cannot set no_new_privs: %s", strerror(errno));
    for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
            errno != EPERM)
            log_debug("privileges: capability %d stays in the bounding set: %s", cap,
                      strerror(errno));
    memset(none, 0, sizeof(none));
    if (syscall(SYS_capset, &hdr, none) < 0)
        log_warn("privileges: cannot drop capabilities: %s", strerror(errno));
    else
        log_info("privileges: running as uid %u with no capabilities", (unsigned)geteuid());
}

static int make_state_dir(const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(path))
        return -EINVAL;
    memcpy(path, dir, n + 1);
    /* mkdir -p, each component 0750. */
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0750) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, 0750) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int kpud_loop_run(struct kpud_config *cfg)
{
    struct daemon d;
    struct kpud_store_opts so;
    struct kpud_devices_hooks hooks;
    int r, status = 0;

    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    d.loop = uv_default_loop();
    signal(SIGPIPE, SIG_IGN);

    kpud_sd_notify("STATUS=starting: opening the database");
    r = make_state_dir(cfg->state_dir);
    if (r < 0) {
        log_err("state directory %s: %s", cfg->state_dir, strerror(-r));
        kpud_sd_notifyf("STATUS=failed: state directory %.200s: %s\nERRNO=%d", cfg->state_dir,
                        strerror(-r), -r);
        return 1;
    }
    memset(&so, 0, sizeof(so));
    so.path = cfg->database;
    so.batch_ms = cfg->batch_ms;
    so.retention_max_age_s = cfg->retention_max_age_s;
    so.retention_max_bytes = cfg->retention_max_bytes;
    so.log = store_log;
    so.committed = store_committed;
    r = kpud_store_open(d.loop, &so, &d.store);
    if (r < 0) {
        log_err("database %s: cannot open (%s)", cfg->database, strerror(-r));
        kpud_sd_notifyf("STATUS=failed: database %.200s: %s\nERRNO=%d", cfg->database, strerror(-r),
                        -r);
        return 1;
    }
    log_info("database %s open", cfg->database);

    r = kpud_ipc_open(d.loop, cfg, &d.ipc);
    if (r < 0) {
        log_err("socket %s: %s", cfg->socket_path, strerror(-r));
        kpud_sd_notifyf("STATUS=failed: socket %.200s: %s\nERRNO=%d", cfg->socket_path,
                        strerror(-r), -r);
        status = 1;
        goto fail_store;
    }

    hooks.detection = on_detection;
    hooks.state = on_state;
    hooks.ended = on_ended;
    hooks.ctx = &d;
    r = kpud_devices_open(d.loop, cfg, d.store, &hooks, &d.devices);
    if (r < 0) {
        kpud_sd_notifyf("STATUS=failed: devices: %s\nERRNO=%d", strerror(-r), -r);
        status = 1;
        goto fail_ipc;
    }
    kpud_ipc_attach(d.ipc, d.store, d.devices);
    drop_privileges();
    if (kpud_devices_count(d.devices) == 0)
        log_notice("no device configured (use --sim, --tty PATH or --replay FILE)");

    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    uv_signal_init(d.loop, &d.sighup);
    d.sigterm.data = d.sigint.data = d.sighup.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_start(&d.sighup, on_signal, SIGHUP);
    log_notice("kpud %s ready: %u device%s, socket %s", KPUD_VERSION, kpud_devices_count(d.devices),
               kpud_devices_count(d.devices) == 1 ? "" : "s", cfg->socket_path);
    /* Socket listening, database migrated, devices opened: clients may come. */
    notify_status(&d, "READY=1\n");
    start_watchdog(&d);

    uv_run(d.loop, UV_RUN_DEFAULT);
    kpud_ipc_free(d.ipc);
    r = uv_loop_close(d.loop);
    if (r == UV_EBUSY)
        log_debug("loop closed with handles still open");
    log_notice("stopped");
    return 0;

fail_ipc:
    kpud_ipc_close(d.ipc);
fail_store:
    if (kpud_store_close(d.store) < 0)
        log_err("store: rows lost at close");
    uv_run(d.loop, UV_RUN_DEFAULT);
    kpud_ipc_free(d.ipc);
    return status;
}
