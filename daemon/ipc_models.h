/* SPDX-License-Identifier: MIT */
/*
 * The model requests of the IPC backend (docs/protocol.md §4, "Models"): ListModels (the
 * boards' stores and the daemon's models table), ModelUploadBegin/Chunk/Commit (buffered
 * in kpud, checked as a kmodel, then sent to the board in link-sized chunks), SelectModel
 * and DeleteModel. Also the mapping of session errors and agent status codes to IPC
 * Status that the snapshot path shares.
 */
#ifndef KPUD_IPC_MODELS_H
#define KPUD_IPC_MODELS_H

#include <uv.h>

#include "config.h"
#include "devices.h"
#include "ipc/ipc_server.h"
#include "store/store.h"

struct kpud_models;

/* Largest kmodel kpud accepts for upload: DESIGN.md §2, "models up to about 5.9 MiB". */
#define KPUD_MODEL_MAX_BYTES (6u * 1024u * 1024u)
/* Largest manifest: link.options, ModelUploadBegin.manifest max_size. */
#define KPUD_MANIFEST_MAX_BYTES 1536u
/* Uploads buffered at once (each up to KPUD_MODEL_MAX_BYTES). */
#define KPUD_UPLOADS_MAX 2u
/* An upload untouched this long may be evicted by a new one. */
#define KPUD_UPLOAD_IDLE_MS (5u * 60u * 1000u)

/* kpud_models_new - the model request handler. Returns NULL when out of memory. */
struct kpud_models *kpud_models_new(uv_loop_t *loop, const struct kpud_config *cfg);

/* kpud_models_attach - give it the store and devices; NULL for both detaches (at close:
 * requests in flight then complete with a Status). */
void kpud_models_attach(struct kpud_models *m, struct kpud_store *store, struct kpud_devices *devs);

/*
 * kpud_models_request - answer f if it is a model request (ListModels, ModelUpload*,
 * SelectModel, DeleteModel). Returns 1 when it took req (it then answers it exactly once,
 * now or later), 0 when f is something else (req untouched).
 */
int kpud_models_request(struct kpud_models *m, struct kpud_ipc_request *req,
                        const Kpu__Ipc__V1__Frame *f);

/* kpud_models_free - release buffers; call once no callback can reach m (after the loop
 * stopped). NULL is a no-op. */
void kpud_models_free(struct kpud_models *m);

/*
 * kpud_ipc_find_device - the session of board id ("" = the only one), or NULL after
 * answering req with NO_SUCH_DEVICE and a hint. devs may be NULL (kpud starting).
 */
struct kpud_session *kpud_ipc_find_device(struct kpud_devices *devs, struct kpud_ipc_request *req,
                                          const char *id);

/*
 * kpud_models_reply_error - answer req with the Status for a failed agent round trip:
 * err is a session errno (-ETIMEDOUT, -ENOTCONN, -ECONNRESET, -ECANCELED, -EBUSY, ...) or
 * -EREMOTEIO with agent_code (a kpu.link.v1.StatusCode) and the agent's text. what names
 * the operation ("snapshot", "model select") for the message. Frees req.
 */
void kpud_models_reply_error(struct kpud_ipc_request *req, const char *what, int err,
                             int agent_code, const char *agent_text);

#endif
