/* SPDX-License-Identifier: MIT */
/*
 * libkpu-client version numbers. The same major means the same ABI: a program built
 * against 1.x runs with any later 1.y. Compare the macros (what you compiled against)
 * with kpu_client_version() (what you run with).
 */
#ifndef KPU_VERSION_H
#define KPU_VERSION_H

#define KPU_CLIENT_VERSION_MAJOR 1
#define KPU_CLIENT_VERSION_MINOR 1
#define KPU_CLIENT_VERSION_PATCH 0
#define KPU_CLIENT_VERSION_STRING "1.1.0"

/* One number for comparisons: 0x010000 for 1.0.0. */
#define KPU_CLIENT_VERSION_HEX                                                                     \
    ((KPU_CLIENT_VERSION_MAJOR << 16) | (KPU_CLIENT_VERSION_MINOR << 8) | KPU_CLIENT_VERSION_PATCH)

/* The kpu.ipc wire version this library speaks (docs/protocol.md §5). */
#define KPU_CLIENT_PROTOCOL_MAJOR 1
#define KPU_CLIENT_PROTOCOL_MINOR 1

#endif /* KPU_VERSION_H */
