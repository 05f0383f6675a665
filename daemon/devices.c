/* SPDX-License-Identifier: MIT */
/*
 * Device manager (see devices.h).
 */
#include "devices.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "manifest.h"
#include "transport_usb.h"

#define MAX_USB_DEVICES 16
#define MAX_DEVICES (KPUD_MAX_TTYS + 2 + MAX_USB_DEVICES)

struct dev {
    struct kpud_devices *owner;
    struct kpud_session *s;
    struct kpud_transport *t; /* s's transport */
    int64_t session_id;       /* store session, 0 = none */
    struct kfa_manifest manifest;
    int have_manifest;
    char model_name[64];
    struct kpud_session_info last; /* for session counters at the end */
};

struct kpud_devices {
    uv_loop_t *loop;
    char state_dir[PATH_MAX];
    struct kpud_store *store;
    struct kpud_devices_hooks hooks;
    struct dev *devs[MAX_DEVICES]; /* allocated: sessions keep pointers to their dev */
    unsigned n;
    unsigned closing_left;
    unsigned retiring;             /* given-back sessions still closing (not in devs) */
    struct kpud_usb *usb;          /* libusb discovery, NULL without [usb] */
    const struct kpud_config *cfg; /* for sessions created later (usb arrivals) */
    int closing;
    void (*done)(void *arg);
    void *done_arg;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct dev *dev_of(struct kpud_devices *d, const struct kpud_session *s)
{
    for (unsigned i = 0; i < d->n; i++)
        if (d->devs[i]->s == s)
            return d->devs[i];
    return NULL;
}

static void end_store_session(struct dev *v)
{
    struct kpud_session_counters c;
    struct kpud_session_info info;

    if (!v->session_id || !v->owner->store)
        return;
    kpud_session_get_info(v->s, &info);
    c.frames = info.frames - v->last.frames;
    c.frames_lost = info.frames_lost - v->last.frames_lost;
    c.link_errors = info.link_errors - v->last.link_errors;
    if (kpud_store_session_update(v->owner->store, v->session_id, &c, now_ns()) < 0)
        log_warn("device %s: session end not stored", info.id);
    v->session_id = 0;
}

static void on_state(struct kpud_session *s, enum kpud_dev_state st, const char *reason, void *user)
{
    struct dev *v = user;
    struct kpud_devices *d = v->owner;
    struct kpud_session_info info;

    kpud_session_get_info(s, &info);
    if (d->store && strncmp(info.id, "port:", 5) != 0 &&
        kpud_store_device_event(d->store, info.id, now_ns(), kpud_dev_state_name(st), reason) < 0)
        log_warn("device %s: event not stored", info.id);
    if (st == KPUD_DEV_LOST || st == KPUD_DEV_BACKOFF)
        end_store_session(v);
    if (d->hooks.state)
        d->hooks.state(d->hooks.ctx, s, st, reason);
}

/* Labels for a board whose manifest we were not given: <state_dir>/models/<name>.ini, then
 * the manifests shipped with kpud. */
static void load_manifest_by_name(struct kpud_devices *d, struct dev *v)
{
    char path[PATH_MAX + 96];
    struct kfa_manifest_error merr;
    const char *dirs[2];
    int n = 0;

    if (strchr(v->model_name, '/') || v->model_name[0] == '.')
        return; /* names come from the board: never let them leave the directory */
    snprintf(path, sizeof(path), "%s/models", d->state_dir);
    dirs[n++] = path;
#ifdef KPUD_MODELS_DIR
    dirs[n++] = KPUD_MODELS_DIR;
#endif
    for (int i = 0; i < n; i++) {
        char file[PATH_MAX + 160];
        snprintf(file, sizeof(file), "%s/%s.ini", dirs[i], v->model_name);
        if (access(file, R_OK) != 0)
            continue;
        if (kfa_manifest_load(file, &v->manifest, &merr) == 0) {
            v->have_manifest = 1;
            log_info("model %s: labels from %s", v->model_name, file);
            return;
        }
        log_warn("manifest: %s", merr.text);
    }
}

static void on_hello(struct kpud_session *s, const Kpu__Link__V1__AgentHello *h, void *user)
{
    struct dev *v = user;
    struct kpud_devices *d = v->owner;
    struct kpud_session_info info;
    const struct kpud_transport *t = kpud_session_transport(s);
    struct kpud_device_rec dr;
    struct kpud_session_rec sr;

    kpud_session_get_info(s, &info);
    /* An agent answered: a usb port is ours for good (no give-back). */
    kpud_transport_usb_agent_seen(v->t);
    if (strcmp(info.agent_version, KPUD_VERSION) != 0 && strcmp(t->ops->kind, "replay") != 0)
        log_notice("device %s: agent %s, this kpud ships %s (kpuctl agent flash %s installs it)",
                   info.id, info.agent_version[0] ? info.agent_version : "(unnamed)", KPUD_VERSION,
                   info.id);
    /* The model the agent runs: the selected stored model, else the configured one. */
    for (size_t i = 0; i < h->n_models; i++)
        if (h->models[i]->selected && h->models[i]->name)
            snprintf(v->model_name, sizeof(v->model_name), "%s", h->models[i]->name);
    if (!v->have_manifest && v->model_name[0])
        load_manifest_by_name(d, v);
    if (!d->store)
        return;
    end_store_session(v);
    dr.id = info.id;
    dr.board = info.board;
    dr.transport = t->ops->kind;
    dr.path = t->path;
    dr.seen_ns = now_ns();
    if (kpud_store_device_seen(d->store, &dr) < 0)
        log_warn("device %s: not stored", info.id);
    sr.device = info.id;
    sr.start_ns = dr.seen_ns;
    sr.agent_version = info.agent_version;
    sr.model = v->model_name;
    sr.reset_cause = info.reset_cause;
    if (kpud_store_session_begin(d->store, &sr, &v->session_id) < 0) {
        log_warn("device %s: session not stored", info.id);
        v->session_id = 0;
    }
    v->last = info;
}

static void on_detection(struct kpud_session *s, const Kpu__Link__V1__DetectionFrame *f,
                         int64_t host_ns, void *user)
{
    struct dev *v = user;
    struct kpud_devices *d = v->owner;
    struct kpud_box_rec boxes[64];
    struct kpud_frame_rec fr;
    struct kpud_session_info info;
    size_t n = f->n_boxes < 64 ? f->n_boxes : 64;

    kpud_session_get_info(s, &info);
    if (d->store) {
        for (size_t i = 0; i < n; i++) {
            const Kpu__Link__V1__Box *b = f->boxes[i];
            boxes[i].class_id = b->class_id;
            boxes[i].label = kpud_devices_label(d, s, b->class_id);
            boxes[i].score = b->score;
            boxes[i].x = b->x;
            boxes[i].y = b->y;
            boxes[i].w = b->w;
            boxes[i].h = b->h;
        }
        fr.device = info.id;
        fr.session_id = v->session_id;
        fr.frame_seq = f->frame_seq;
        fr.device_time_us = f->device_time_us;
        fr.host_time_ns = host_ns;
        fr.model = v->model_name;
        fr.image_width = f->image_width;
        fr.image_height = f->image_height;
        fr.kpu_us = f->kpu_us;
        fr.n_boxes = (uint32_t)n;
        fr.boxes = boxes;
        if (kpud_store_add_frame(d->store, &fr) < 0)
            log_debug("device %s: frame %u not queued", info.id, f->frame_seq);
    }
    if (d->hooks.detection)
        d->hooks.detection(d->hooks.ctx, s, f, host_ns);
}

static void on_ended(struct kpud_session *s, void *user)
{
    struct dev *v = user;
    end_store_session(v);
    if (v->owner->hooks.ended)
        v->owner->hooks.ended(v->owner->hooks.ctx, s);
}

static const struct kpud_session_callbacks session_cbs = {
    .ended = on_ended,
    .state = on_state,
    .hello = on_hello,
    .detection = on_detection,
};

int kpud_devices_find_sim_agent(const struct kpud_config *cfg, char *out, size_t outlen)
{
    char self[PATH_MAX];
    ssize_t n;
    const char *candidates[3];
    char here[PATH_MAX + 32];
    int nc = 0;

    if (cfg->sim_agent[0]) {
        snprintf(out, outlen, "%s", cfg->sim_agent);
        return access(out, X_OK) == 0 ? 0 : -ENOENT;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        snprintf(here, sizeof(here), "%s/kpu-agent-sim", dirname(self));
        candidates[nc++] = here;
    }
#ifdef KPUD_SIM_BUILD_PATH
    candidates[nc++] = KPUD_SIM_BUILD_PATH; /* the build tree, for running uninstalled */
#endif
#ifdef KPUD_SIM_INSTALL_PATH
    candidates[nc++] = KPUD_SIM_INSTALL_PATH;
#endif
    for (int i = 0; i < nc; i++) {
        if (access(candidates[i], X_OK) == 0) {
            snprintf(out, outlen, "%s", candidates[i]);
            return 0;
        }
    }
    return -ENOENT;
}

static int add_session(struct kpud_devices *d, struct kpud_transport *t,
                       const struct kpud_config *cfg, const char *manifest_path)
{
    struct dev *v = calloc(1, sizeof(*v));
    struct kpud_session_config sc;
    struct kfa_manifest_error merr;
    int r;

    if (!v) {
        t->ops->close(t);
        return -ENOMEM;
    }
    memset(&sc, 0, sizeof(sc));
    v->owner = d;
    v->t = t;
    snprintf(sc.model, sizeof(sc.model), "%s", cfg->model);
    sc.threshold = cfg->threshold;
    sc.nms = cfg->nms;
    sc.max_boxes = cfg->max_boxes;
    sc.fps_cap = cfg->fps_cap;
    if (manifest_path && *manifest_path) {
        if (kfa_manifest_load(manifest_path, &v->manifest, &merr) == 0) {
            size_t l = strnlen(v->manifest.name, sizeof(v->model_name) - 1);
            v->have_manifest = 1;
            memcpy(v->model_name, v->manifest.name, l);
            v->model_name[l] = 0;
        } else {
            log_warn("manifest: %s (labels unknown)", merr.text);
        }
    }
    r = kpud_session_open(d->loop, t, &sc, NULL, &session_cbs, v, &v->s);
    if (r < 0) {
        free(v);
        return r;
    }
    d->devs[d->n++] = v;
    return 0;
}

/* The manifest the simulator is given: explicit, or <model without .kmodel>.ini beside it,
 * or the built-in one for a shared model of the same name. */
static void sim_manifest_path(const struct kpud_config *cfg, char *out, size_t outlen)
{
    char stem[PATH_MAX];
    const char *base;
    size_t l;

    out[0] = 0;
    if (cfg->sim_manifest[0]) {
        snprintf(out, outlen, "%s", cfg->sim_manifest);
        return;
    }
    if (!cfg->sim_model[0])
        return;
    snprintf(stem, sizeof(stem), "%s", cfg->sim_model);
    l = strlen(stem);
    if (l > 7 && strcmp(stem + l - 7, ".kmodel") == 0)
        stem[l - 7] = 0;
    snprintf(out, outlen, "%.*s.ini", (int)outlen - 5, stem);
    if (access(out, R_OK) == 0)
        return;
    base = strrchr(stem, '/');
    base = base ? base + 1 : stem;
#ifdef KPUD_MODELS_DIR
    snprintf(out, outlen, "%s/%.*s.ini", KPUD_MODELS_DIR, (int)(outlen / 2), base);
    if (access(out, R_OK) == 0)
        return;
#endif
    out[0] = 0;
}

#define DEFAULT_SIM_MODEL "maixpy_facedetect_320x240.kmodel"

/* Candidate data folders, most specific first: fetched models, then test data. */
static int data_dirs(const struct kpud_config *cfg, char dirs[][PATH_MAX / 2], const char *sub)
{
    const char *env = getenv("KPU_TEST_DATA");
    int n = 0;

    if (!strcmp(sub, "models"))
        snprintf(dirs[n++], PATH_MAX / 2, "%.1900s/models", cfg->state_dir);
    if (env && *env)
        snprintf(dirs[n++], PATH_MAX / 2, "%.1900s/%s", env, sub);
#ifdef KPUD_SHARED_DATA
    snprintf(dirs[n++], PATH_MAX / 2, "%.1900s/%s", KPUD_SHARED_DATA, sub);
#endif
    return n;
}

void kpud_devices_resolve_sim(struct kpud_config *cfg)
{
    char dirs[3][PATH_MAX / 2], path[PATH_MAX];
    int n;

    if (!cfg->sim)
        return;
    if (!cfg->sim_model[0]) {
        n = data_dirs(cfg, dirs, "models");
        for (int i = 0; i < n && !cfg->sim_model[0]; i++) {
            snprintf(path, sizeof(path), "%.2000s/" DEFAULT_SIM_MODEL, dirs[i]);
            if (access(path, R_OK) == 0)
                snprintf(cfg->sim_model, sizeof(cfg->sim_model), "%.2100s", path);
        }
        if (!cfg->sim_model[0]) {
#ifdef KPUD_REPLAY_FALLBACK
            if (access(KPUD_REPLAY_FALLBACK, R_OK) == 0) {
                log_notice("sim: no %s found (looked in %s/models, $KPU_TEST_DATA/models and "
                           "the shared test data): replaying %s, a capture recorded from that "
                           "model on a simulated board, instead",
                           DEFAULT_SIM_MODEL, cfg->state_dir, KPUD_REPLAY_FALLBACK);
                cfg->sim = 0;
                snprintf(cfg->replay, sizeof(cfg->replay), "%s", KPUD_REPLAY_FALLBACK);
                cfg->replay_loop = 1;
                return;
            }
#endif
            log_warn("sim: no model given or found; the simulated board will not stream");
        } else {
            log_info("sim: model %s", cfg->sim_model);
        }
    }
    if (!cfg->sim_images[0]) {
        n = data_dirs(cfg, dirs, "images");
        for (int i = 0; i < n && !cfg->sim_images[0]; i++)
            if (access(dirs[i], R_OK) == 0)
                snprintf(cfg->sim_images, sizeof(cfg->sim_images), "%.2000s", dirs[i]);
        if (cfg->sim_images[0])
            log_info("sim: camera shows the images in %s", cfg->sim_images);
    }
}

static int open_sim(struct kpud_devices *d, const struct kpud_config *cfg)
{
    char agent[PATH_MAX], manifest[PATH_MAX], flash[PATH_MAX + 32], fps[16], hold[16];
    const char *args[24];
    int n = 0, r;
    struct kpud_sim_opts o = {0};
    struct kpud_transport *t;
    struct stat st;

    if (kpud_devices_find_sim_agent(cfg, agent, sizeof(agent)) < 0) {
        log_err("sim: kpu-agent-sim not found (set [sim] agent or install it next to kpud)");
        return -ENOENT;
    }
    sim_manifest_path(cfg, manifest, sizeof(manifest));
    if (cfg->sim_model[0]) {
        args[n++] = "--model";
        args[n++] = cfg->sim_model;
        if (manifest[0]) {
            args[n++] = "--manifest";
            args[n++] = manifest;
        }
    }
    if (cfg->sim_images[0]) {
        int dir = stat(cfg->sim_images, &st) == 0 && S_ISDIR(st.st_mode);
        args[n++] = dir ? "--dir" : "--image";
        args[n++] = cfg->sim_images;
        if (dir) {
            /* A folder: show each picture for about a second, like a slow scene. */
            snprintf(hold, sizeof(hold), "%u", cfg->sim_fast ? 30 : cfg->sim_fps);
            args[n++] = "--hold";
            args[n++] = hold;
        }
    }
    if (cfg->sim_fast) {
        args[n++] = "--fast";
    } else {
        snprintf(fps, sizeof(fps), "%u", cfg->sim_fps);
        args[n++] = "--fps";
        args[n++] = fps;
    }
    snprintf(flash, sizeof(flash), "%s/sim-flash.bin", cfg->state_dir);
    args[n++] = "--flash";
    args[n++] = flash;
    if (cfg->sim_seed[0]) {
        args[n++] = "--seed";
        args[n++] = cfg->sim_seed;
    }
    if (cfg->sim_faults[0]) {
        args[n++] = "--fault";
        args[n++] = cfg->sim_faults;
    }
    args[n] = NULL;
    o.agent_path = agent;
    o.args = args;
    r = kpud_transport_sim_new(d->loop, &o, &t);
    if (r < 0)
        return r;
    return add_session(d, t, cfg, manifest);
}

/* A usb bridge appeared on a port for the first time: it gets a session; its HELLO tells
 * whether it is a kpud board. */
static int usb_new_port(void *ctx, struct kpud_transport *t)
{
    struct kpud_devices *d = ctx;
    int r;

    if (d->closing || d->n >= MAX_DEVICES) {
        if (!d->closing)
            log_warn("usb %s: ignored, %d devices already", t->path, MAX_DEVICES);
        t->ops->close(t);
        return -ENOSPC;
    }
    r = add_session(d, t, d->cfg, NULL);
    if (r < 0)
        log_err("usb %s: %s", t->path, strerror(-r));
    return r;
}

static void devices_maybe_final(struct kpud_devices *d);

/* A given-back session has closed: its dev goes, and a shutdown waiting for it goes on. */
static void retired_done(void *arg)
{
    struct dev *v = arg;
    struct kpud_devices *d = v->owner;

    free(v);
    d->retiring--;
    if (d->closing)
        devices_maybe_final(d);
}

/*
 * No agent answered HELLO on a usb port within [usb] give_back_after: the transport gave
 * the interface back to its kernel driver. The session stops being a device: watchers get
 * one DeviceEvent saying why (the link-down event when the link was up, else one here),
 * then it leaves the list and is closed. The port comes back only with a new arrival.
 */
static void usb_given_back(void *ctx, struct kpud_transport *t, const char *reason)
{
    struct kpud_devices *d = ctx;
    struct kpud_session_info info;
    struct dev *v = NULL;
    unsigned i;

    for (i = 0; i < d->n; i++)
        if (d->devs[i]->t == t)
            break;
    if (i == d->n || d->closing)
        return; /* a shutdown closes it anyway */
    v = d->devs[i];
    kpud_session_get_info(v->s, &info);
    if (d->store && strncmp(info.id, "port:", 5) != 0 &&
        kpud_store_device_event(d->store, info.id, now_ns(), kpud_dev_state_name(KPUD_DEV_RELEASED),
                                reason) < 0)
        log_warn("device %s: event not stored", info.id);
    if (d->hooks.state)
        d->hooks.state(d->hooks.ctx, v->s, KPUD_DEV_RELEASED, reason);
    end_store_session(v);
    memmove(&d->devs[i], &d->devs[i + 1], (d->n - i - 1) * sizeof(d->devs[0]));
    d->n--;
    d->retiring++;
    kpud_session_close(v->s, retired_done, v);
}

static int open_usb(struct kpud_devices *d, const struct kpud_config *cfg)
{
    struct kpud_usb_opts o = {0};
    struct kpud_usb_hooks h = {.new_port = usb_new_port, .given_back = usb_given_back, .ctx = d};

    o.baud = cfg->usb_baud;
    o.isp_baud = cfg->usb_isp_baud;
    o.allow = cfg->usb_allow;
    o.deny = cfg->usb_deny;
    o.reset_profile = cfg->usb_reset_profile;
    o.interface = cfg->usb_interface;
    o.give_back_ms = cfg->usb_give_back_ms;
    if (cfg->agent_boot == KPUD_AGENT_BOOT_SRAM) {
        if (!cfg->agent_image[0]) {
            log_err("usb: agent_boot = sram needs agent_image (the K210 agent .bin)");
            return -EINVAL;
        }
        o.agent_image = cfg->agent_image;
    }
    return kpud_usb_open(d->loop, &o, &h, &d->usb);
}

int kpud_devices_open(uv_loop_t *loop, const struct kpud_config *cfg, struct kpud_store *store,
                      const struct kpud_devices_hooks *hooks, struct kpud_devices **ret)
{
    struct kpud_devices *d = calloc(1, sizeof(*d));
    struct kpud_transport *t;
    int r;

    if (!d)
        return -ENOMEM;
    d->loop = loop;
    d->cfg = cfg;
    snprintf(d->state_dir, sizeof(d->state_dir), "%s", cfg->state_dir);
    d->store = store;
    if (hooks)
        d->hooks = *hooks;
    if (cfg->sim && (r = open_sim(d, cfg)) < 0)
        goto fail;
    for (int i = 0; i < cfg->n_ttys; i++) {
        struct kpud_tty_opts o = {.path = cfg->ttys[i], .baud = cfg->tty_baud};
        if ((r = kpud_transport_tty_new(loop, &o, &t)) < 0) {
            log_err("tty %s: %s", cfg->ttys[i], strerror(-r));
            goto fail;
        }
        if ((r = add_session(d, t, cfg, cfg->sim_manifest)) < 0)
            goto fail;
    }
    if (cfg->replay[0]) {
        struct kpud_replay_opts o = {
            .path = cfg->replay, .speed = cfg->replay_speed, .loop = cfg->replay_loop};
        if ((r = kpud_transport_replay_new(loop, &o, &t)) < 0)
            goto fail;
        if ((r = add_session(d, t, cfg, cfg->sim_manifest)) < 0)
            goto fail;
    }
    if (cfg->usb && (r = open_usb(d, cfg)) < 0)
        goto fail;
    if (cfg->record[0] && d->n > 0) {
        r = kpud_session_record_start(d->devs[0]->s, cfg->record, "kpud --record");
        if (r < 0)
            log_err("record %s: %s", cfg->record, strerror(-r));
        else
            log_info("recording the link of the first device to %s", cfg->record);
    }
    *ret = d;
    return 0;
fail:
    kpud_devices_close(d, NULL, NULL);
    return r;
}

static void devices_final(void *arg)
{
    struct kpud_devices *d = arg;
    for (unsigned i = 0; i < d->n; i++)
        free(d->devs[i]);
    if (d->done)
        d->done(d->done_arg);
    free(d);
}

/* Shutdown ends once every listed session and every given-back one has closed. */
static void devices_maybe_final(struct kpud_devices *d)
{
    if (d->closing_left == 0 && d->retiring == 0) {
        /* Every usb transport is closed now; libusb goes last. */
        if (d->usb)
            kpud_usb_close(d->usb, devices_final, d);
        else
            devices_final(d);
    }
}

static void session_done(void *arg)
{
    struct kpud_devices *d = arg;
    d->closing_left--;
    devices_maybe_final(d);
}

void kpud_devices_close(struct kpud_devices *d, void (*done)(void *arg), void *arg)
{
    d->done = done;
    d->done_arg = arg;
    d->closing = 1;
    d->closing_left = d->n + 1;
    for (unsigned i = 0; i < d->n; i++) {
        end_store_session(d->devs[i]);
        kpud_session_close(d->devs[i]->s, session_done, d);
    }
    session_done(d);
}

unsigned kpud_devices_count(const struct kpud_devices *d)
{
    return d->n;
}

struct kpud_session *kpud_devices_at(const struct kpud_devices *d, unsigned i)
{
    return i < d->n ? d->devs[i]->s : NULL;
}

struct kpud_session *kpud_devices_find(const struct kpud_devices *d, const char *id)
{
    struct kpud_session_info info;

    if ((!id || !*id) && d->n == 1)
        return d->devs[0]->s;
    if (!id)
        return NULL;
    for (unsigned i = 0; i < d->n; i++) {
        kpud_session_get_info(d->devs[i]->s, &info);
        if (strcmp(info.id, id) == 0)
            return d->devs[i]->s;
    }
    return NULL;
}

const char *kpud_devices_label(const struct kpud_devices *d, const struct kpud_session *s,
                               uint32_t class_id)
{
    struct dev *v = dev_of((struct kpud_devices *)d, s);
    const char *l;

    if (!v || !v->have_manifest)
        return "";
    l = kfa_manifest_label(&v->manifest, class_id);
    return l ? l : "";
}

const char *kpud_devices_model_name(const struct kpud_devices *d, const struct kpud_session *s)
{
    struct dev *v = dev_of((struct kpud_devices *)d, s);
    return v ? v->model_name : "";
}

void kpud_devices_model_selected(struct kpud_devices *d, struct kpud_session *s, const char *name)
{
    struct dev *v = dev_of(d, s);

    if (!v || !name || strlen(name) >= sizeof(v->model_name))
        return;
    snprintf(v->model_name, sizeof(v->model_name), "%s", name);
    v->have_manifest = 0;
    load_manifest_by_name(d, v);
}
