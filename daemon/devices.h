/* SPDX-License-Identifier: MIT */
/*
 * The device manager: creates one session per configured board (simulator, ttys, replay),
 * feeds what they report into the store, and tells the rest of the daemon (the IPC
 * fan-out) through hooks. Identity is the chip uid an agent reports in HELLO.
 */
#ifndef KPUD_DEVICES_H
#define KPUD_DEVICES_H

#include <uv.h>

#include "config.h"
#include "session.h"
#include "store/store.h"

struct kpud_devices;

struct kpud_devices_hooks {
    /* A detection frame arrived from s (after it was queued for the store). label(i) gives
     * the manifest label of box i's class, "" when unknown. */
    void (*detection)(void *ctx, struct kpud_session *s, const Kpu__Link__V1__DetectionFrame *f,
                      int64_t host_ns);
    /* s changed state. */
    void (*state)(void *ctx, struct kpud_session *s, enum kpud_dev_state st, const char *reason);
    /* s's transport ended for good (a replay reached the end of its capture). */
    void (*ended)(void *ctx, struct kpud_session *s);
    void *ctx;
};

/*
 * kpud_devices_open - create and start the sessions cfg asks for. Returns 0 and sets *ret
 * (possibly with no device), or a negative errno for a configuration that cannot work
 * (e.g. a replay file that is not a capture); the error is logged.
 */
int kpud_devices_open(uv_loop_t *loop, const struct kpud_config *cfg, struct kpud_store *store,
                      const struct kpud_devices_hooks *hooks, struct kpud_devices **ret);

/* kpud_devices_close - close every session; done (may be NULL) runs when all are freed. */
void kpud_devices_close(struct kpud_devices *d, void (*done)(void *arg), void *arg);

/* kpud_devices_count - number of sessions. */
unsigned kpud_devices_count(const struct kpud_devices *d);

/* kpud_devices_at - session i (0 <= i < count). */
struct kpud_session *kpud_devices_at(const struct kpud_devices *d, unsigned i);

/* kpud_devices_find - the session whose id (chip uid hex or "port:...") is id, or NULL. An
 * empty id or "" matches the only device when there is exactly one. */
struct kpud_session *kpud_devices_find(const struct kpud_devices *d, const char *id);

/* kpud_devices_label - the label of class_id for the model session s runs, "" if unknown. */
const char *kpud_devices_label(const struct kpud_devices *d, const struct kpud_session *s,
                               uint32_t class_id);

/* kpud_devices_model_name - the name of the model s runs ("" if unknown). */
const char *kpud_devices_model_name(const struct kpud_devices *d, const struct kpud_session *s);

/*
 * kpud_devices_resolve_sim - fill in what a bare --sim leaves open: the MaixPy face model
 * (looked for in <state_dir>/models, $KPU_TEST_DATA/models and the shared data beside the
 * source tree) and the test images folder. When no model can be found, switch cfg to
 * replaying the capture recorded from that model (looping) and say so in the log.
 */
void kpud_devices_resolve_sim(struct kpud_config *cfg);

/* kpud_devices_model_selected - s now runs the stored model name (after a ModelSelect):
 * its events carry that name and the labels of that model's manifest from now on. */
void kpud_devices_model_selected(struct kpud_devices *d, struct kpud_session *s, const char *name);

/* kpud_devices_find_sim_agent - locate kpu-agent-sim (cfg, next to kpud, build tree,
 * PATH). Copies the path into out and returns 0, or -ENOENT. */
int kpud_devices_find_sim_agent(const struct kpud_config *cfg, char *out, size_t outlen);

#endif
