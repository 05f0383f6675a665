/* SPDX-License-Identifier: MIT */
/*
 * The klink frame type byte <-> kpu.link.v1 message table for the host (protobuf-c).
 * One place knows which message each MsgType carries, so that the daemon, kpuctl monitor,
 * the replay tools and the fuzzers decode a frame the same way.
 */
#ifndef KPU_LINK_TYPES_H
#define KPU_LINK_TYPES_H

#include <stdint.h>

#include "kpu/link/v1/link.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * klink_type_descriptor - the protobuf-c descriptor of the message a frame of this type
 * carries, or NULL for MSG_INVALID and types this build does not know.
 */
const ProtobufCMessageDescriptor *klink_type_descriptor(uint8_t type);

/* klink_type_name - a short name for logs ("DETECTION_FRAME"), "UNKNOWN" if not known. */
const char *klink_type_name(uint8_t type);

/* klink_type_count - one more than the highest known type value. */
unsigned klink_type_count(void);

#ifdef __cplusplus
}
#endif

#endif /* KPU_LINK_TYPES_H */
