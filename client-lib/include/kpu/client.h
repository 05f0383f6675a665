/* SPDX-License-Identifier: MIT */
/*
 * libkpu-client: talk to kpud, the K210 detection daemon, from C (and anything with a C
 * FFI). Two ways to use it:
 *
 *  - Synchronous calls with a timeout: list devices, query history (paging is done for
 *    you), take a snapshot, read and change configuration, manage models, retention and
 *    recordings. Each call sends one request and waits for its answer.
 *  - Live events through your own loop: kpu_client_subscribe() registers a callback;
 *    watch kpu_client_get_fd() for reading (and for writing while kpu_client_want_write()
 *    says so), call kpu_client_process() when it is ready, and wake up after
 *    kpu_client_next_timeout_ms(). kpu_client_run() does all that with poll() for you.
 *
 * Rules that hold everywhere:
 *  - Functions returning int return 0 (or a documented positive value) on success and a
 *    negative KPU_CLIENT_E* code on failure; kpu_client_strerror() and
 *    kpu_client_err_name() describe it, and for failures reported by the daemon
 *    kpu_client_last_error_text() / _hint() carry its own words.
 *  - Output parameters (ret_*) are set only on success.
 *  - Memory the library returns through ret_* is one block: release it with
 *    kpu_client_free(). Pointers handed to callbacks are valid only during the callback.
 *  - The library starts no threads, never logs, never exits or aborts, and installs no
 *    signal handlers (it writes with MSG_NOSIGNAL). A kpu_client_t is not thread-safe: use
 *    it from one thread at a time.
 *  - All times are Unix epoch nanoseconds (int64_t) unless the name says otherwise.
 *
 * Full guide: docs/client.md.
 */
#ifndef KPU_CLIENT_H
#define KPU_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <kpu/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(KPU_CLIENT_BUILDING)
#define KPU_CLIENT_EXPORT __attribute__((visibility("default")))
#else
#define KPU_CLIENT_EXPORT
#endif

/* ------------------------------------------------------------------------------------- */
/* Errors */

/*
 * XX(name, value, text). KPU_CLIENT_E<name> = value. Values are stable within major 1;
 * new codes may be added.
 */
#define KPU_CLIENT_ERRNO_MAP(XX)                                                                   \
    XX(INVAL, -1, "invalid argument")                                                              \
    XX(NOMEM, -2, "out of memory")                                                                 \
    XX(CONNECT, -3, "cannot connect to kpud")                                                      \
    XX(ACCES, -4, "permission denied")                                                             \
    XX(PROTO, -5, "protocol error")                                                                \
    XX(VERSION, -6, "protocol version mismatch")                                                   \
    XX(TIMEDOUT, -7, "timed out")                                                                  \
    XX(CLOSED, -8, "connection to kpud closed")                                                    \
    XX(NODEV, -9, "no such device")                                                                \
    XX(OFFLINE, -10, "device offline")                                                             \
    XX(DEVICE, -11, "device error")                                                                \
    XX(LIMIT, -12, "limit exceeded")                                                               \
    XX(NOMODEL, -13, "no such model")                                                              \
    XX(STORE, -14, "daemon database error")                                                        \
    XX(BUSY, -15, "busy")                                                                          \
    XX(INTERNAL, -16, "daemon internal error")                                                     \
    XX(NOTFOUND, -17, "not found")                                                                 \
    XX(UNSUPPORTED, -18, "not supported by this daemon")                                           \
    XX(TOOBIG, -19, "message too large")                                                           \
    XX(IO, -20, "I/O error on the socket")                                                         \
    XX(CANCELED, -21, "stopped by the callback")                                                   \
    XX(NOTCONN, -22, "not connected")

enum kpu_client_error {
#define KPU_CLIENT_XX_ENUM(name, value, text) KPU_CLIENT_E##name = (value),
    KPU_CLIENT_ERRNO_MAP(KPU_CLIENT_XX_ENUM)
#undef KPU_CLIENT_XX_ENUM
};

/* kpu_client_strerror - a static English text for err (a KPU_CLIENT_E* value); an unknown
 * value gives "unknown error". Never NULL. */
KPU_CLIENT_EXPORT const char *kpu_client_strerror(int err);

/* kpu_client_err_name - the code's name without prefix ("TIMEDOUT"), or "UNKNOWN". Never
 * NULL, static. */
KPU_CLIENT_EXPORT const char *kpu_client_err_name(int err);

/* ------------------------------------------------------------------------------------- */
/* Version */

/* kpu_client_version - the running library's version as KPU_CLIENT_VERSION_HEX. */
KPU_CLIENT_EXPORT unsigned kpu_client_version(void);

/* kpu_client_version_string - the running library's version, e.g. "1.0.0". Static. */
KPU_CLIENT_EXPORT const char *kpu_client_version_string(void);

/* ------------------------------------------------------------------------------------- */
/* Plain types */

/* Connection role granted by kpud from the peer credentials. Values match the wire. */
enum kpu_client_role {
    KPU_CLIENT_ROLE_NONE = 0,
    KPU_CLIENT_ROLE_READER = 1, /* watch, query, snapshot, stats */
    KPU_CLIENT_ROLE_ADMIN = 2,  /* also config, models, retention, reset, recording */
};

/* Device state machine. Values match the wire; unknown values may appear. */
enum kpu_client_device_state {
    KPU_CLIENT_DEVICE_UNKNOWN = 0,
    KPU_CLIENT_DEVICE_PROBING = 1,
    KPU_CLIENT_DEVICE_BOOTING = 2,
    KPU_CLIENT_DEVICE_HELLO = 3,
    KPU_CLIENT_DEVICE_CONFIGURING = 4,
    KPU_CLIENT_DEVICE_STREAMING = 5,
    KPU_CLIENT_DEVICE_LOST = 6,
    KPU_CLIENT_DEVICE_BACKOFF = 7,
    KPU_CLIENT_DEVICE_IDLE = 8,
    KPU_CLIENT_DEVICE_RELEASED = 9, /* since 1.1: a usb port with no agent, given back */
};

/* kpu_client_device_state_name - "streaming", "idle", ...; "unknown" otherwise. Static. */
KPU_CLIENT_EXPORT const char *kpu_client_device_state_name(int state);

/* Snapshot pixel formats. Values match the wire. */
enum kpu_client_image_format {
    KPU_CLIENT_IMAGE_PNG = 0,
    KPU_CLIENT_IMAGE_RGB565 = 1,        /* 2 bytes a pixel, little-endian */
    KPU_CLIENT_IMAGE_RGB888_PLANAR = 2, /* all R, then all G, then all B */
};

/* A rectangle in camera pixels. */
struct kpu_client_rect {
    uint32_t x, y, w, h;
};

/* One detected object. label is "" when the model manifest has none. */
struct kpu_client_box {
    uint32_t class_id;
    const char *label;
    float score;  /* 0..1 */
    int32_t x, y; /* top-left, pixels; may be negative at the frame edge */
    uint32_t w, h;
};

/* One processed camera frame. */
struct kpu_client_detection {
    const char *device;      /* device id */
    uint32_t frame_seq;      /* +1 per frame on the board */
    uint64_t device_time_us; /* agent monotonic clock at capture */
    int64_t host_time_ns;    /* receipt by kpud */
    const char *model;
    uint32_t image_width, image_height;
    uint32_t kpu_us;
    size_t n_boxes;
    const struct kpu_client_box *boxes;
};

/* A board as kpud sees it. Strings are "" when unknown. */
struct kpu_client_device {
    const char *id;        /* chip uid hex, or "port:<path>" before the agent answered */
    const char *transport; /* "usb", "tty", "sim", "replay" */
    const char *path;
    const char *bridge; /* "ch340", "ft2232", "" */
    int state;          /* enum kpu_client_device_state */
    const char *board;
    const char *agent_version;
    const char *sensor;
    const char *model;
    uint32_t image_width, image_height;
    float fps;
    uint32_t kpu_us;
    uint64_t frames, frames_lost, link_errors;
    uint32_t reconnects;
    const char *last_error;
    uint64_t connected_since_ns;
    const char *reset_cause;
};

/* Daemon counters (kpuctl stats). */
struct kpu_client_stats {
    uint64_t uptime_ms;
    uint32_t devices;
    uint32_t clients;
    uint64_t frames_received;
    uint64_t detections_stored;
    uint64_t frames_lost;
    uint64_t link_errors;
    uint64_t events_dropped;
    uint64_t db_bytes;
    uint64_t db_rows;
    uint64_t db_write_errors;
    uint64_t db_batches;
    uint64_t rss_bytes;
};

/* What the daemon announced when the connection was made. */
struct kpu_client_server_info {
    const char *server_version;
    uint32_t protocol_major, protocol_minor;
    int role; /* enum kpu_client_role */
    uint32_t max_frame, max_subscriptions, max_page_rows, queue_messages;
    uint64_t queue_bytes;
    char instance_id[33]; /* hex; changes when the daemon restarts */
    uint64_t boot_time_ns;
    size_t n_features;
    const char *const *features;
};

/*
 * A detection filter. Zero-initialise it: every unset member matches everything; set
 * members must all match. A box matches labels if its label is one of them, and region if
 * its centre lies inside.
 */
struct kpu_client_filter {
    const char *const *devices;
    size_t n_devices;
    const uint32_t *class_ids;
    size_t n_class_ids;
    const char *const *labels;
    size_t n_labels;
    float min_score; /* 0 = no minimum */
    int has_region;  /* nonzero: region applies */
    struct kpu_client_rect region;
};

/* ------------------------------------------------------------------------------------- */
/* Connection */

typedef struct kpu_client kpu_client_t;

enum kpu_client_state {
    KPU_CLIENT_STATE_DISCONNECTED = 0, /* lost; reconnecting if enabled */
    KPU_CLIENT_STATE_CONNECTED = 1,    /* handshake done, subscriptions restored */
};

/*
 * State callback: the connection went down (err says why) or came back (err 0;
 * daemon_restarted nonzero when kpud's instance id changed, so history may have moved on).
 */
typedef void (*kpu_client_state_cb)(kpu_client_t *client, int state, int err, int daemon_restarted,
                                    void *user_data);

/* Options for kpu_client_open(). Zero-initialise: every zero member takes its default. */
struct kpu_client_opts {
    const char *socket_path;      /* NULL: $KPUD_SOCKET, else $XDG_RUNTIME_DIR/kpud.sock when not
                                root and it exists, else /run/kpud/kpud.sock */
    const char *client_name;      /* announced to kpud; NULL = "libkpu-client" */
    int timeout_ms;               /* synchronous calls; 0 = 5000, negative = wait forever */
    int reconnect;                /* nonzero: reconnect with backoff and re-subscribe */
    int reconnect_min_ms;         /* first retry delay; 0 = 100 */
    int reconnect_max_ms;         /* backoff cap; 0 = 5000 */
    kpu_client_state_cb state_cb; /* may be NULL */
    void *user_data;              /* passed to state_cb */
};

/*
 * kpu_client_default_socket - the socket path kpu_client_open() uses when opts has none
 * (see kpu_client_opts.socket_path). Writes at most size bytes including the NUL.
 * Returns 0, KPU_CLIENT_EINVAL (buf NULL or size 0) or KPU_CLIENT_ETOOBIG (truncated).
 */
KPU_CLIENT_EXPORT int kpu_client_default_socket(char *buf, size_t size);

/*
 * kpu_client_open - connect to kpud and do the handshake (ServerHello, ClientHello).
 * opts may be NULL (all defaults). On success *ret_client is a new client to close with
 * kpu_client_close().
 * Returns 0; KPU_CLIENT_EINVAL (ret_client NULL, path too long); KPU_CLIENT_ENOMEM;
 * KPU_CLIENT_ECONNECT (no socket, nobody listening); KPU_CLIENT_EACCES (the socket file
 * or kpud refused this user); KPU_CLIENT_EVERSION (kpud speaks another protocol major);
 * KPU_CLIENT_ETIMEDOUT; KPU_CLIENT_ECLOSED / KPU_CLIENT_EPROTO / KPU_CLIENT_ELIMIT (kpud
 * closed, spoke garbage, or has too many clients). After a failure,
 * kpu_client_open_error_text() may hold the daemon's explanation.
 */
KPU_CLIENT_EXPORT int kpu_client_open(const struct kpu_client_opts *opts,
                                      kpu_client_t **ret_client);

/* kpu_client_open_error_text / _hint - the daemon's text and hint of the last failed
 * kpu_client_open() in this thread ("" when none). Static per-thread storage. */
KPU_CLIENT_EXPORT const char *kpu_client_open_error_text(void);
KPU_CLIENT_EXPORT const char *kpu_client_open_error_hint(void);

/* kpu_client_close - disconnect and free everything, including subscriptions. NULL is a
 * no-op. Must not be called from inside one of this client's callbacks. */
KPU_CLIENT_EXPORT void kpu_client_close(kpu_client_t *client);

/* kpu_client_free - release a block returned through a ret_* parameter. NULL is a no-op. */
KPU_CLIENT_EXPORT void kpu_client_free(void *ptr);

/* kpu_client_socket_path - the path this client connects to. Valid while client lives. */
KPU_CLIENT_EXPORT const char *kpu_client_socket_path(const kpu_client_t *client);

/*
 * kpu_client_server_info - what kpud announced on the current connection. Returns a
 * pointer valid until the next reconnect or kpu_client_close(); NULL when disconnected.
 */
KPU_CLIENT_EXPORT const struct kpu_client_server_info *
kpu_client_server_info(const kpu_client_t *client);

/* kpu_client_set_timeout - change the synchronous-call timeout (ms; 0 = 5000, negative =
 * forever). Returns 0 or KPU_CLIENT_EINVAL (client NULL). */
KPU_CLIENT_EXPORT int kpu_client_set_timeout(kpu_client_t *client, int timeout_ms);

/*
 * kpu_client_last_error_text / _hint - for the last call on client that failed because
 * the daemon said so (any code mapped from a daemon Status), its text and hint; "" for
 * failures found locally. Valid until the next call on client. Never NULL.
 */
KPU_CLIENT_EXPORT const char *kpu_client_last_error_text(const kpu_client_t *client);
KPU_CLIENT_EXPORT const char *kpu_client_last_error_hint(const kpu_client_t *client);

/*
 * kpu_client_last_reply_json - the body of the last successful synchronous reply as one
 * line of JSON (field names as in kpu.ipc.v1, 64-bit integers as numbers, bytes as hex).
 * On success *ret_json is a NUL-terminated string to release with kpu_client_free().
 * Returns 0, KPU_CLIENT_EINVAL (no reply yet, or an argument NULL), KPU_CLIENT_ENOMEM.
 */
KPU_CLIENT_EXPORT int kpu_client_last_reply_json(const kpu_client_t *client, char **ret_json);

/* ------------------------------------------------------------------------------------- */
/* Synchronous calls. Each returns 0 or a negative code: besides those listed, any call
 * may return KPU_CLIENT_EINVAL (a required argument NULL), KPU_CLIENT_ENOMEM,
 * KPU_CLIENT_ETIMEDOUT, KPU_CLIENT_ECLOSED / KPU_CLIENT_EIO / KPU_CLIENT_ENOTCONN (the
 * connection failed; with reconnect enabled the next call tries again), KPU_CLIENT_EPROTO
 * (an answer that does not fit the request), KPU_CLIENT_EACCES (the call needs the admin
 * role), KPU_CLIENT_EUNSUPPORTED (the daemon does not serve it), KPU_CLIENT_EINTERNAL.
 * Events that arrive meanwhile are kept and delivered by the next kpu_client_process(). */

/* kpu_client_ping - round trip to the daemon. rtt_ns and server_time_ns may be NULL. */
KPU_CLIENT_EXPORT int kpu_client_ping(kpu_client_t *client, uint64_t *rtt_ns,
                                      int64_t *server_time_ns);

/* kpu_client_list_devices - every board kpud knows. *ret_devices is an array of *ret_n
 * entries in one block (kpu_client_free); with no devices it is still a valid block. */
KPU_CLIENT_EXPORT int kpu_client_list_devices(kpu_client_t *client,
                                              struct kpu_client_device **ret_devices,
                                              size_t *ret_n);

/* kpu_client_get_device - one board by id. Also KPU_CLIENT_ENODEV. *ret_device: one
 * block (kpu_client_free). */
KPU_CLIENT_EXPORT int kpu_client_get_device(kpu_client_t *client, const char *device,
                                            struct kpu_client_device **ret_device);

/* kpu_client_get_stats - daemon counters into *out (caller's storage). */
KPU_CLIENT_EXPORT int kpu_client_get_stats(kpu_client_t *client, struct kpu_client_stats *out);

/* A stored detection: one box of one frame. */
struct kpu_client_row {
    uint64_t id; /* database row id */
    const char *device;
    int64_t time_ns;
    uint32_t frame_seq;
    struct kpu_client_box box;
    const char *model;
    const void *priv_; /* library-private: lets kpu_client_row_json() render the row */
};

/* A history query. Zero-initialise; unset members mean "everything". */
struct kpu_client_query {
    const struct kpu_client_filter *filter; /* NULL = all */
    int64_t since_ns;                       /* inclusive; 0 = beginning */
    int64_t until_ns;                       /* exclusive; 0 = now */
    uint64_t max_rows;                      /* stop after this many rows; 0 = all */
    int oldest_first;                       /* nonzero: ascending time; default newest first */
    uint32_t page_rows;                     /* rows per request; 0 = the daemon's maximum */
};

/* Row callback: return 0 to continue, nonzero to stop (the query then returns
 * KPU_CLIENT_ECANCELED). row and its strings are valid during the call only. */
typedef int (*kpu_client_row_cb)(kpu_client_t *client, const struct kpu_client_row *row,
                                 void *user_data);

/*
 * kpu_client_query - run a history query, fetching pages as needed, and call cb for every
 * row in order. Returns the number of rows delivered (>= 0, capped at INT32_MAX) or a
 * negative code (also KPU_CLIENT_ECANCELED when cb stopped it, KPU_CLIENT_ESTORE).
 */
KPU_CLIENT_EXPORT int kpu_client_query(kpu_client_t *client, const struct kpu_client_query *q,
                                       kpu_client_row_cb cb, void *user_data);

typedef struct kpu_client_query_iter kpu_client_query_iter_t;

/* kpu_client_query_iter_open - the same query as an iterator (pull instead of push).
 * *ret_iter is released with kpu_client_query_iter_close(). Sends no request yet. */
KPU_CLIENT_EXPORT int kpu_client_query_iter_open(kpu_client_t *client,
                                                 const struct kpu_client_query *q,
                                                 kpu_client_query_iter_t **ret_iter);

/* kpu_client_query_iter_next - the next row into *ret_row (valid until the next call on
 * iter). Returns 1 with a row, 0 at the end, or a negative code (sticky). */
KPU_CLIENT_EXPORT int kpu_client_query_iter_next(kpu_client_query_iter_t *iter,
                                                 const struct kpu_client_row **ret_row);

/* kpu_client_query_iter_close - free iter. NULL is a no-op. */
KPU_CLIENT_EXPORT void kpu_client_query_iter_close(kpu_client_query_iter_t *iter);

/* kpu_client_row_json - render a row (from a callback or iterator) as one JSON object.
 * *ret_json: kpu_client_free. Returns 0, KPU_CLIENT_EINVAL, KPU_CLIENT_ENOMEM. */
KPU_CLIENT_EXPORT int kpu_client_row_json(const struct kpu_client_row *row, char **ret_json);

/* A camera frame. data holds size bytes in format. */
struct kpu_client_snapshot {
    const char *device;
    uint32_t width, height;
    int format; /* enum kpu_client_image_format */
    const uint8_t *data;
    size_t size;
    size_t n_boxes;
    const struct kpu_client_box *boxes; /* detections of the same frame */
    uint32_t frame_seq;
};

/* kpu_client_snapshot - grab the current frame of device in format (the daemon may
 * answer another format; check ->format). Also KPU_CLIENT_ENODEV, _EOFFLINE, _EDEVICE.
 * *ret_snapshot: one block (kpu_client_free). */
KPU_CLIENT_EXPORT int kpu_client_snapshot(kpu_client_t *client, const char *device, int format,
                                          struct kpu_client_snapshot **ret_snapshot);

/* Detection configuration of a board. */
struct kpu_client_config {
    const char *device;
    const char *model;
    float threshold; /* 0..1 */
    float nms;       /* 0..1 */
    size_t n_anchors;
    const float *anchors; /* pairs, grid units */
    uint32_t max_boxes;
    uint32_t fps_cap; /* 0 = unlimited */
    int has_roi;
    struct kpu_client_rect roi;
};

/* Which members kpu_client_config_set() applies. */
enum kpu_client_config_field {
    KPU_CLIENT_CFG_MODEL = 1 << 0,
    KPU_CLIENT_CFG_THRESHOLD = 1 << 1,
    KPU_CLIENT_CFG_NMS = 1 << 2,
    KPU_CLIENT_CFG_ANCHORS = 1 << 3,
    KPU_CLIENT_CFG_MAX_BOXES = 1 << 4,
    KPU_CLIENT_CFG_FPS_CAP = 1 << 5,
    KPU_CLIENT_CFG_ROI = 1 << 6,
};

/* kpu_client_config_get - device's current configuration. Also KPU_CLIENT_ENODEV.
 * *ret_config: one block (kpu_client_free). */
KPU_CLIENT_EXPORT int kpu_client_config_get(kpu_client_t *client, const char *device,
                                            struct kpu_client_config **ret_config);

/*
 * kpu_client_config_set - change the members of cfg named in fields (a mask of
 * KPU_CLIENT_CFG_*) on cfg->device; persist nonzero also stores them as the boot
 * configuration. ret_config (may be NULL) receives the resulting configuration (one
 * block, kpu_client_free). Admin only. Also KPU_CLIENT_ENODEV, _EDEVICE, _ENOMODEL.
 */
KPU_CLIENT_EXPORT int kpu_client_config_set(kpu_client_t *client,
                                            const struct kpu_client_config *cfg, unsigned fields,
                                            int persist, struct kpu_client_config **ret_config);

/* A model known to the daemon. */
struct kpu_client_model {
    const char *name;
    uint32_t size;
    uint32_t crc32c;
    const char *manifest; /* model manifest text */
    size_t n_devices;
    const char *const *devices; /* where it is stored */
    size_t n_selected_on;
    const char *const *selected_on; /* where it is current */
};

/* kpu_client_model_list - models on device (NULL or "" = every device and the daemon's
 * store). *ret_models: array of *ret_n in one block (kpu_client_free). */
KPU_CLIENT_EXPORT int kpu_client_model_list(kpu_client_t *client, const char *device,
                                            struct kpu_client_model **ret_models, size_t *ret_n);

/* Upload progress: done of total bytes acknowledged. Return nonzero to stop. */
typedef int (*kpu_client_progress_cb)(kpu_client_t *client, uint64_t done, uint64_t total,
                                      void *user_data);

/*
 * kpu_client_model_upload - send a kmodel of size bytes to device under name, in chunks
 * that fit the daemon's frame limit, resuming where a previous interrupted upload of the
 * same name, size and CRC stopped; then commit it. manifest may be NULL. progress may be
 * NULL. Admin only. Also KPU_CLIENT_ENODEV, _EDEVICE (the agent refused it: CRC, invalid
 * kmodel; see kpu_client_last_error_text), _ECANCELED, _ETOOBIG (size above 4 GiB).
 */
KPU_CLIENT_EXPORT int kpu_client_model_upload(kpu_client_t *client, const char *device,
                                              const char *name, const void *data, size_t size,
                                              const char *manifest, kpu_client_progress_cb progress,
                                              void *user_data);

/* kpu_client_model_select - make a stored model current on device. Admin only. Also
 * KPU_CLIENT_ENODEV, _ENOMODEL, _EDEVICE. */
KPU_CLIENT_EXPORT int kpu_client_model_select(kpu_client_t *client, const char *device,
                                              const char *name);

/* kpu_client_model_delete - remove a stored model from device (NULL = the daemon's
 * store). Admin only. Also KPU_CLIENT_ENODEV, _ENOMODEL, _EBUSY (it is current). */
KPU_CLIENT_EXPORT int kpu_client_model_delete(kpu_client_t *client, const char *device,
                                              const char *name);

/* kpu_client_reset - restart device: through the agent, or with hard nonzero through the
 * bridge's DTR/RTS lines. Admin only. Also KPU_CLIENT_ENODEV. */
KPU_CLIENT_EXPORT int kpu_client_reset(kpu_client_t *client, const char *device, int hard);

/* History retention bounds; 0 means "no bound". */
struct kpu_client_retention {
    uint64_t max_age_s;
    uint64_t max_bytes;
};

/* What a retention pass or a history deletion did (or would do, in a dry run). */
struct kpu_client_retention_report {
    uint64_t rows_deleted;
    int64_t oldest_kept_ns;
    uint64_t db_bytes;
    int dry_run;
};

/* kpu_client_retention_get - the daemon's retention bounds into *out. */
KPU_CLIENT_EXPORT int kpu_client_retention_get(kpu_client_t *client,
                                               struct kpu_client_retention *out);

/* kpu_client_retention_set - change them; *out (may be NULL) receives the result. Admin. */
KPU_CLIENT_EXPORT int kpu_client_retention_set(kpu_client_t *client,
                                               const struct kpu_client_retention *r,
                                               struct kpu_client_retention *out);

/* kpu_client_retention_apply - run retention now (dry_run: only count). *out may be NULL.
 * Admin only. Also KPU_CLIENT_ESTORE. */
KPU_CLIENT_EXPORT int kpu_client_retention_apply(kpu_client_t *client, int dry_run,
                                                 struct kpu_client_retention_report *out);

/* kpu_client_delete_history - delete stored detections matching filter (NULL = all) in
 * [since_ns, until_ns) (0 = unbounded). *out may be NULL. Admin only. */
KPU_CLIENT_EXPORT int kpu_client_delete_history(kpu_client_t *client,
                                                const struct kpu_client_filter *filter,
                                                int64_t since_ns, int64_t until_ns, int dry_run,
                                                struct kpu_client_retention_report *out);

/* Recording state of a device's link capture. */
struct kpu_client_record_state {
    const char *device;
    int recording;
    const char *path;
    uint64_t bytes;
};

/* kpu_client_record_start / _stop - capture device's raw link to path (a name inside the
 * daemon's capture directory). *ret_state (may be NULL): one block (kpu_client_free).
 * Admin only. Also KPU_CLIENT_ENODEV, _EBUSY (already recording). */
KPU_CLIENT_EXPORT int kpu_client_record_start(kpu_client_t *client, const char *device,
                                              const char *path, const char *notes,
                                              struct kpu_client_record_state **ret_state);
KPU_CLIENT_EXPORT int kpu_client_record_stop(kpu_client_t *client, const char *device,
                                             struct kpu_client_record_state **ret_state);

enum kpu_client_agent_action {
    KPU_CLIENT_AGENT_VERSION = 0,   /* read only; readers may ask */
    KPU_CLIENT_AGENT_BOOT_SRAM = 1, /* load the agent through the ROM ISP */
    KPU_CLIENT_AGENT_FLASH = 2,     /* write the agent to SPI flash */
};

struct kpu_client_agent_info {
    const char *device;
    const char *agent_version;
    const char *expected_version;
    uint32_t progress_permille;
    const char *phase; /* since 1.1: "isp", "hello", "write", "verify", "reboot"; "" at the end */
};

/* kpu_client_agent_control - agent firmware action on device. Admin for anything but
 * KPU_CLIENT_AGENT_VERSION. *ret_info: one block (kpu_client_free). A boot or flash can
 * take minutes at 115200 baud: the call waits as long as kpud reports progress. */
KPU_CLIENT_EXPORT int kpu_client_agent_control(kpu_client_t *client, const char *device, int action,
                                               struct kpu_client_agent_info **ret_info);

/* Progress of a boot or flash: info (valid during the call) has progress_permille and phase.
 * Return nonzero to stop waiting (the call returns KPU_CLIENT_ECANCELED; kpud finishes the
 * job on its own). */
typedef int (*kpu_client_agent_progress_cb)(kpu_client_t *client,
                                            const struct kpu_client_agent_info *info,
                                            void *user_data);

/* kpu_client_agent_control_progress - kpu_client_agent_control with progress reports
 * (progress may be NULL). Since 1.1; a kpud of protocol 1.0 sends no progress. */
KPU_CLIENT_EXPORT int kpu_client_agent_control_progress(kpu_client_t *client, const char *device,
                                                        int action,
                                                        kpu_client_agent_progress_cb progress,
                                                        void *user_data,
                                                        struct kpu_client_agent_info **ret_info);

/* ------------------------------------------------------------------------------------- */
/* Live events: bring your own loop */

enum kpu_client_event_type {
    KPU_CLIENT_EVENT_DETECTION = 1, /* ev->detection */
    KPU_CLIENT_EVENT_DEVICE = 2,    /* ev->device and ev->reason */
    KPU_CLIENT_EVENT_DROPPED = 3,   /* ev->dropped_count events lost before the next one */
};

struct kpu_client_event {
    int type;                 /* enum kpu_client_event_type */
    uint32_t subscription_id; /* the id kpu_client_subscribe() returned */
    const struct kpu_client_detection *detection;
    const struct kpu_client_device *device;
    const char *reason;
    uint64_t dropped_count; /* by kpud's queue or, rarely, the library's */
    uint32_t first_frame_seq;
    const void *priv_; /* library-private: lets kpu_client_event_json() render it */
};

/* Event callback. ev and everything it points to is valid during the call only. */
typedef void (*kpu_client_event_cb)(kpu_client_t *client, const struct kpu_client_event *ev,
                                    void *user_data);

/* Delivery options of a subscription. Zero-initialise for the defaults. */
struct kpu_client_sub_opts {
    float max_rate_hz; /* per device; 0 = every frame */
    int latest_only;   /* keep only the newest event per device while behind */
    int include_empty; /* also frames with no (matching) boxes */
    int device_events; /* also device state changes */
};

/*
 * kpu_client_subscribe - start receiving events that pass filter (NULL = all) with opts
 * (NULL = defaults); cb is called from kpu_client_process() / kpu_client_run(). With
 * reconnect enabled the subscription is restored after every reconnect. On success
 * *ret_id (may be NULL) is the subscription id, stable across reconnects. Also
 * KPU_CLIENT_ELIMIT (too many subscriptions).
 */
KPU_CLIENT_EXPORT int kpu_client_subscribe(kpu_client_t *client,
                                           const struct kpu_client_filter *filter,
                                           const struct kpu_client_sub_opts *opts,
                                           kpu_client_event_cb cb, void *user_data,
                                           uint32_t *ret_id);

/* kpu_client_unsubscribe - stop subscription id. Returns 0 or KPU_CLIENT_ENOTFOUND (or a
 * connection error; the local subscription is removed anyway). */
KPU_CLIENT_EXPORT int kpu_client_unsubscribe(kpu_client_t *client, uint32_t id);

/* kpu_client_event_json - render ev (inside its callback) as one line of JSON: the
 * wire event with its type as the key, e.g. {"detection":{...}}. *ret_json:
 * kpu_client_free. Returns 0, KPU_CLIENT_EINVAL, KPU_CLIENT_ENOMEM. */
KPU_CLIENT_EXPORT int kpu_client_event_json(const struct kpu_client_event *ev, char **ret_json);

/* kpu_client_get_fd - the socket to watch for reading, or KPU_CLIENT_ENOTCONN while
 * disconnected (then wake up after kpu_client_next_timeout_ms() instead). The fd changes
 * across reconnects: ask again after every kpu_client_process(). */
KPU_CLIENT_EXPORT int kpu_client_get_fd(const kpu_client_t *client);

/* kpu_client_want_write - 1 when unsent data waits (also watch the fd for writing), else
 * 0. */
KPU_CLIENT_EXPORT int kpu_client_want_write(const kpu_client_t *client);

/* kpu_client_next_timeout_ms - how long the caller may sleep before calling
 * kpu_client_process() even without fd activity: 0 (events are waiting), a positive
 * number (a reconnect is due), or -1 (no deadline). */
KPU_CLIENT_EXPORT int kpu_client_next_timeout_ms(const kpu_client_t *client);

/*
 * kpu_client_process - never blocks: writes what it can, reads what is there, calls event
 * callbacks, and attempts a due reconnect (the reconnect handshake itself waits up to the
 * call timeout). Returns 0; KPU_CLIENT_ECLOSED / _EIO / _EPROTO when the connection broke
 * (with reconnect enabled it returns 0 and a reconnect is scheduled); KPU_CLIENT_ENOTCONN
 * when disconnected without reconnect.
 */
KPU_CLIENT_EXPORT int kpu_client_process(kpu_client_t *client);

/*
 * kpu_client_run - a blocking helper: poll() and process until timeout_ms passes
 * (negative = forever) or kpu_client_stop() is called from a callback. Returns 0 then, or
 * the first error of kpu_client_process().
 */
KPU_CLIENT_EXPORT int kpu_client_run(kpu_client_t *client, int timeout_ms);

/* kpu_client_stop - make the current (or next) kpu_client_run() return 0 soon. Safe from
 * callbacks and signal handlers of the same thread. */
KPU_CLIENT_EXPORT void kpu_client_stop(kpu_client_t *client);

#ifdef __cplusplus
}
#endif

#endif /* KPU_CLIENT_H */
