/* SPDX-License-Identifier: MIT */
/*
 * Short names for the kpu.link.v1.StatusCode values the core returns (negated) from its
 * functions and puts in Status replies. The values are the wire enum's (link.proto); the
 * static asserts in agent.c keep them equal to the nanopb-generated ones.
 */
#ifndef KFA_STATUS_H
#define KFA_STATUS_H

enum kfa_status {
    KFA_ST_OK = 0,
    KFA_ST_BAD_REQUEST = 1,
    KFA_ST_UNSUPPORTED = 2,
    KFA_ST_BUSY = 3,
    KFA_ST_NO_SUCH_MODEL = 4,
    KFA_ST_MODEL_INVALID = 5,
    KFA_ST_NO_SPACE = 6,
    KFA_ST_CRC_MISMATCH = 7,
    KFA_ST_BAD_OFFSET = 8,
    KFA_ST_NOT_STREAMING = 9,
    KFA_ST_INTERNAL = 10,
    KFA_ST_FLASH_ERROR = 11,
    KFA_ST_CAMERA_ERROR = 12,
};

#endif /* KFA_STATUS_H */
