/* SPDX-License-Identifier: MIT */
/*
 * Link check for the cross build: encodes a HostHello with nanopb and frames it with
 * klink, so the image needs the codec, the framing and their libc dependencies.
 */
#include <pb_encode.h>

#include "klink.h"
#include "kpu/link/v1/link.pb.h"

int main(void)
{
    static uint8_t payload[kpu_link_v1_HostHello_size];
    static uint8_t wire[KLINK_MAX_ENCODED];
    kpu_link_v1_HostHello hello = kpu_link_v1_HostHello_init_zero;
    pb_ostream_t os = pb_ostream_from_buffer(payload, sizeof(payload));

    hello.protocol_major = 1;
    if (!pb_encode(&os, kpu_link_v1_HostHello_fields, &hello))
        return 1;
    return klink_encode(1, 0, 0, 0, payload, os.bytes_written, wire, sizeof(wire)) ? 0 : 2;
}
