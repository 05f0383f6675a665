/* SPDX-License-Identifier: MIT */
/*
 * klink: the byte-stream framing of the kpud <-> agent link, shared by the daemon and the
 * firmware. A frame on the wire is
 *
 *     COBS( header[6] | payload[0..KLINK_MAX_PAYLOAD] | crc32c[4] ) 0x00
 *
 * header: type (u8, kpu.link.v1.MsgType), flags (u8), seq (u16 LE), ref (u16 LE).
 * crc32c: CRC-32C (Castagnoli) of header and payload, little-endian.
 *
 * COBS (Cheshire & Baker, "Consistent Overhead Byte Stuffing", IEEE/ACM ToN 1999) removes
 * every 0x00 from the frame so that 0x00 can delimit frames; a receiver that joins mid-
 * stream, or sees boot-ROM noise, resynchronises at the next 0x00.
 *
 * This file builds freestanding: no allocation, no stdio, only <stdint.h>, <stddef.h>
 * and memcpy/memset. The decoder works in a caller-supplied buffer.
 */
#ifndef KPU_KLINK_H
#define KPU_KLINK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KLINK_HEADER_SIZE 6u
#define KLINK_CRC_SIZE 4u
/* Largest protobuf payload in one frame. link.options bounds keep every message below it. */
#define KLINK_MAX_PAYLOAD 4096u
/* Decoded frame: header + payload + CRC. */
#define KLINK_MAX_FRAME (KLINK_HEADER_SIZE + KLINK_MAX_PAYLOAD + KLINK_CRC_SIZE)
/* COBS adds one byte per 254 plus one; then the delimiter. */
#define KLINK_COBS_OVERHEAD(n) ((n) / 254u + 1u)
#define KLINK_MAX_ENCODED (KLINK_MAX_FRAME + KLINK_COBS_OVERHEAD(KLINK_MAX_FRAME) + 1u)

/* Frame header flags. */
#define KLINK_FLAG_RESPONSE 0x01u /* this frame answers the request whose seq is `ref` */
#define KLINK_FLAG_RETRY 0x02u    /* a retransmission of a request (same seq) */

struct klink_frame {
    uint8_t type;           /* kpu.link.v1.MsgType */
    uint8_t flags;          /* KLINK_FLAG_* */
    uint16_t seq;           /* sender's frame counter, per direction */
    uint16_t ref;           /* for responses: the seq of the request answered */
    const uint8_t *payload; /* points into the decoder's buffer; valid until the next call */
    size_t payload_len;
};

/* Counters a decoder keeps; all monotonically increasing. */
struct klink_stats {
    uint64_t frames_ok;       /* frames delivered */
    uint64_t crc_errors;      /* well-formed COBS, wrong CRC */
    uint64_t oversize;        /* frames longer than the buffer, discarded */
    uint64_t malformed;       /* bad COBS or shorter than header + CRC */
    uint64_t resyncs;         /* times the decoder threw bytes away before a good frame */
    uint64_t bytes_discarded; /* bytes thrown away (bad frames, noise) */
    uint64_t bytes_in;        /* every byte fed */
};

/* Streaming decoder state. Treat as opaque; sized for static allocation. */
struct klink_decoder {
    uint8_t *buf;      /* caller's buffer for one decoded frame */
    size_t cap;        /* its size */
    size_t len;        /* decoded bytes so far */
    size_t raw_len;    /* encoded bytes of the current frame so far */
    uint8_t code;      /* current COBS block code */
    uint8_t remaining; /* data bytes left in the current block */
    uint8_t dirty;     /* bytes were discarded since the last good frame */
    struct klink_stats stats;
};

/*
 * klink_crc32c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of buf, continuing
 * from crc (pass 0 to start). The same CRC as iSCSI (RFC 3720 B.4) and ext4.
 * Returns the updated CRC.
 */
uint32_t klink_crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * klink_encoded_size_max - the largest wire size of a frame with payload_len bytes,
 * delimiter included. Use it to size the output buffer of klink_encode().
 */
size_t klink_encoded_size_max(size_t payload_len);

/*
 * klink_encode - build one wire frame (COBS-encoded, 0x00-terminated) into out.
 * payload may be NULL when payload_len is 0.
 * Returns the number of bytes written, or 0 if payload_len exceeds KLINK_MAX_PAYLOAD or
 * out_cap is smaller than klink_encoded_size_max(payload_len). Never writes past out_cap.
 */
size_t klink_encode(uint8_t type, uint8_t flags, uint16_t seq, uint16_t ref, const uint8_t *payload,
                    size_t payload_len, uint8_t *out, size_t out_cap);

/*
 * klink_decoder_init - prepare a decoder that decodes into buf (cap bytes; at least
 * KLINK_HEADER_SIZE + KLINK_CRC_SIZE, normally KLINK_MAX_FRAME). Frames whose decoded
 * size exceeds cap are discarded and counted as oversize without further copying.
 * The decoder treats the first byte as the start of a frame; a receiver that joined
 * mid-frame loses that one frame (counted as malformed or CRC error) and is in sync from
 * the next 0x00 on. Statistics start at zero.
 */
void klink_decoder_init(struct klink_decoder *dec, uint8_t *buf, size_t cap);

/* klink_decoder_reset - drop any partial frame (e.g. after a port reopen); keeps stats. */
void klink_decoder_reset(struct klink_decoder *dec);

/*
 * klink_decode - feed bytes. Consumes input from *data / *len until one valid frame is
 * complete or the input is exhausted; advances *data and decreases *len by what it used.
 * Returns 1 with *frame filled when a frame is complete (its payload points into the
 * decoder's buffer, valid until the next call), 0 when all input was consumed without
 * completing a frame. Invalid frames are counted in dec->stats and skipped; never fails.
 */
int klink_decode(struct klink_decoder *dec, const uint8_t **data, size_t *len,
                 struct klink_frame *frame);

#ifdef __cplusplus
}
#endif

#endif /* KPU_KLINK_H */
