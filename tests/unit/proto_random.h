/* SPDX-License-Identifier: MIT */
/*
 * Test helper: fill any protobuf-c message with random field values, walking its
 * descriptor, within the nanopb bounds of a .options file (so that nanopb's static
 * structs can hold the result). Used by the cross-codec tests and the benchmarks.
 */
#ifndef KPU_TESTS_PROTO_RANDOM_H
#define KPU_TESTS_PROTO_RANDOM_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

/* proto_random_load_options - read "pkg.Msg.field max_size:N / max_count:N" lines.
 * Returns the number of bounds read, or -1 if the file cannot be read. */
int proto_random_load_options(const char *path);

/* proto_random_seed - restart the deterministic generator. */
void proto_random_seed(uint32_t seed);

/*
 * proto_random_new - a new message of type desc with every field set to a random value
 * (repeated fields get 0..max_count elements, strings and bytes 0..bound bytes, enums a
 * declared value, sub-messages recursively, each optional scalar sometimes zero).
 * Free with protobuf_c_message_free_unpacked(msg, NULL). Returns NULL on allocation failure.
 */
ProtobufCMessage *proto_random_new(const ProtobufCMessageDescriptor *desc);

#endif
