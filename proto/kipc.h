/* SPDX-License-Identifier: MIT */
/*
 * kipc: framing of the kpud <-> client wire (kpu.ipc.v1). Each message on the Unix stream
 * socket is a 4-byte big-endian length followed by that many bytes of one serialized
 * kpu.ipc.v1.Frame. Shared by the daemon and libkpu-client; host only.
 *
 * The reader checks the announced length against its limit before it allocates, so a
 * hostile peer cannot make it reserve more than max_frame bytes.
 */
#ifndef KPU_KIPC_H
#define KPU_KIPC_H

#include <stddef.h>
#include <stdint.h>

#include "kpu/ipc/v1/ipc.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KIPC_HEADER_SIZE 4u
#define KIPC_DEFAULT_MAX_FRAME (1024u * 1024u) /* 1 MiB */

/* Results of kipc_reader_feed(). */
#define KIPC_NEED_MORE 0
#define KIPC_FRAME 1
#define KIPC_E_TOO_LARGE (-1) /* announced length above the limit; the stream is unusable */
#define KIPC_E_NOMEM (-2)     /* allocation failed; the stream is unusable */

struct kipc_reader {
    uint8_t hdr[KIPC_HEADER_SIZE]; /* length prefix being assembled */
    size_t hdr_len;                /* bytes of hdr filled */
    uint8_t *buf;                  /* frame body; grows up to max_frame */
    size_t buf_cap;                /* allocated size of buf */
    size_t need;                   /* announced length of the current frame */
    size_t have;                   /* bytes of the current frame received */
    uint32_t max_frame;            /* limit on one frame body, bytes */
    int error;                     /* sticky KIPC_E_* once the stream is broken */
    uint32_t too_large_len;        /* the offending length, for error messages */
};

/*
 * kipc_reader_init - prepare a reader that accepts frames of at most max_frame bytes
 * (0 means KIPC_DEFAULT_MAX_FRAME). Allocates nothing until data arrives.
 */
void kipc_reader_init(struct kipc_reader *r, uint32_t max_frame);

/* kipc_reader_free - release the reader's buffer; the reader may be initialised again. */
void kipc_reader_free(struct kipc_reader *r);

/*
 * kipc_reader_feed - consume bytes from *data / *len until one frame is complete.
 * Advances *data and decreases *len by the bytes used.
 * Returns KIPC_FRAME with *frame / *frame_len pointing at the body (valid until the next
 * call), KIPC_NEED_MORE when the input ran out first, or a negative KIPC_E_* once the
 * stream is unusable (sticky: later calls return the same error and consume nothing).
 */
int kipc_reader_feed(struct kipc_reader *r, const uint8_t **data, size_t *len,
                     const uint8_t **frame, size_t *frame_len);

/* kipc_put_header - write the 4-byte big-endian length prefix for a body of len bytes. */
void kipc_put_header(uint8_t out[KIPC_HEADER_SIZE], uint32_t len);

/*
 * kipc_pack - serialize frame with its length prefix into a new malloc()ed buffer.
 * Returns 0 and sets *out / *out_len (caller frees *out), -1 if the packed size exceeds
 * max_frame (0 = default) or allocation fails.
 */
int kipc_pack(const Kpu__Ipc__V1__Frame *frame, uint32_t max_frame, uint8_t **out, size_t *out_len);

/*
 * kipc_unpack - decode one frame body. Returns a new message to free with
 * kpu__ipc__v1__frame__free_unpacked(msg, NULL), or NULL if the bytes are not a valid
 * kpu.ipc.v1.Frame.
 */
Kpu__Ipc__V1__Frame *kipc_unpack(const uint8_t *body, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* KPU_KIPC_H */
