/* SPDX-License-Identifier: MIT */
/*
 * .kcap: a recording of one device link, both directions, with timestamps, so a session
 * can be replayed (the replay transport, the replay test corpus) like gpsd's gpsfake logs.
 *
 * Layout (all integers little-endian):
 *
 *   magic    "KCAP"            4 bytes
 *   version  u8 = 1
 *   reserved 3 bytes, 0
 *   hdr_len  u32               length of the header text, at most KCAP_MAX_HEADER
 *   header   hdr_len bytes     UTF-8 "key=value\n" lines: board, agent_version, date,
 *                              transport, path, notes (values on one line)
 *   records  until EOF:
 *     dir    u8                0 = agent to host, 1 = host to agent, 2 = marker
 *     flags  u8                0
 *     len    u16               payload bytes (markers: a short text such as "link up")
 *     t_us   u64               microseconds since the capture started
 *     data   len bytes
 *
 * A capture cut short (kpud killed mid-record) ends at the last whole record; readers
 * report the truncation but keep what came before.
 */
#ifndef KPUD_KCAP_H
#define KPUD_KCAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KCAP_MAGIC "KCAP"
#define KCAP_VERSION 1
#define KCAP_MAX_HEADER 65536u
#define KCAP_RECORD_HEADER 12u
#define KCAP_MAX_RECORD 65535u

enum kcap_dir {
    KCAP_AGENT_TO_HOST = 0,
    KCAP_HOST_TO_AGENT = 1,
    KCAP_MARKER = 2,
};

struct kcap_record {
    enum kcap_dir dir;
    uint64_t t_us;
    const uint8_t *data; /* points into the reader's buffer */
    size_t len;
};

/* A capture held in memory (captures are small: a minute of detections is ~200 KB). */
struct kcap_reader {
    const uint8_t *buf; /* whole file */
    size_t size;
    size_t pos;         /* next record */
    const char *header; /* not NUL-terminated: header_len bytes */
    size_t header_len;
    int truncated; /* set when the last record was cut short */
};

/*
 * kcap_reader_open - validate the file header of buf[0..size). buf must stay valid while
 * the reader is used. Returns 0, or -EINVAL with a reason in err (errlen bytes) for a
 * buffer that is not a version-1 capture.
 */
int kcap_reader_open(struct kcap_reader *r, const uint8_t *buf, size_t size, char *err,
                     size_t errlen);

/*
 * kcap_reader_next - the next record. Returns 1 with *rec filled, 0 at the end (sets
 * r->truncated if bytes were left that do not make a whole record), or -EINVAL for a
 * record with an unknown direction (the reader stops there).
 */
int kcap_reader_next(struct kcap_reader *r, struct kcap_record *rec);

/*
 * kcap_header_get - copy the value of key from the header into out (outlen bytes,
 * NUL-terminated, truncated if needed). Returns 1 if found, 0 if not.
 */
int kcap_header_get(const struct kcap_reader *r, const char *key, char *out, size_t outlen);

/* kcap_load_file - read a whole file into a new malloc()ed buffer (at most 256 MiB).
 * Returns 0 and sets *buf / *size, or a negative errno. */
int kcap_load_file(const char *path, uint8_t **buf, size_t *size);

/*
 * kcap_write_header - start a capture on f with the given header text (key=value lines;
 * may be NULL). Returns 0 or -EIO.
 */
int kcap_write_header(FILE *f, const char *header);

/* kcap_write_record - append one record (len <= KCAP_MAX_RECORD; longer data is split).
 * Returns 0 or -EIO. */
int kcap_write_record(FILE *f, enum kcap_dir dir, uint64_t t_us, const uint8_t *data, size_t len);

#endif
