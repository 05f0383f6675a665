/* SPDX-License-Identifier: MIT */
/*
 * MsgType -> message table for the host side of the link (see link_types.h).
 */
#include "link_types.h"

#include <stddef.h>

struct type_entry {
    const ProtobufCMessageDescriptor *desc;
    const char *name;
};

#define T(enumval, desc, name) [KPU__LINK__V1__MSG_TYPE__##enumval] = {&desc, name}

static const struct type_entry types[] = {
    T(MSG_HOST_HELLO, kpu__link__v1__host_hello__descriptor, "HOST_HELLO"),
    T(MSG_AGENT_HELLO, kpu__link__v1__agent_hello__descriptor, "AGENT_HELLO"),
    T(MSG_CONFIGURE, kpu__link__v1__configure__descriptor, "CONFIGURE"),
    T(MSG_STREAM_CONTROL, kpu__link__v1__stream_control__descriptor, "STREAM_CONTROL"),
    T(MSG_DETECTION_FRAME, kpu__link__v1__detection_frame__descriptor, "DETECTION_FRAME"),
    T(MSG_HEARTBEAT, kpu__link__v1__heartbeat__descriptor, "HEARTBEAT"),
    T(MSG_STATUS, kpu__link__v1__status__descriptor, "STATUS"),
    T(MSG_SNAPSHOT_REQUEST, kpu__link__v1__snapshot_request__descriptor, "SNAPSHOT_REQUEST"),
    T(MSG_SNAPSHOT_CHUNK, kpu__link__v1__snapshot_chunk__descriptor, "SNAPSHOT_CHUNK"),
    T(MSG_SNAPSHOT_CREDIT, kpu__link__v1__snapshot_credit__descriptor, "SNAPSHOT_CREDIT"),
    T(MSG_MODEL_UPLOAD_BEGIN, kpu__link__v1__model_upload_begin__descriptor, "MODEL_UPLOAD_BEGIN"),
    T(MSG_MODEL_UPLOAD_CHUNK, kpu__link__v1__model_upload_chunk__descriptor, "MODEL_UPLOAD_CHUNK"),
    T(MSG_MODEL_UPLOAD_COMMIT, kpu__link__v1__model_upload_commit__descriptor,
      "MODEL_UPLOAD_COMMIT"),
    T(MSG_MODEL_UPLOAD_STATE, kpu__link__v1__model_upload_state__descriptor, "MODEL_UPLOAD_STATE"),
    T(MSG_MODEL_LIST, kpu__link__v1__model_list_request__descriptor, "MODEL_LIST"),
    T(MSG_MODEL_LIST_REPLY, kpu__link__v1__model_list__descriptor, "MODEL_LIST_REPLY"),
    T(MSG_MODEL_SELECT, kpu__link__v1__model_select__descriptor, "MODEL_SELECT"),
    T(MSG_MODEL_DELETE, kpu__link__v1__model_delete__descriptor, "MODEL_DELETE"),
    T(MSG_RESET, kpu__link__v1__reset__descriptor, "RESET"),
    T(MSG_LOG_LINE, kpu__link__v1__log_line__descriptor, "LOG_LINE"),
    T(MSG_SET_BAUD, kpu__link__v1__set_baud__descriptor, "SET_BAUD"),
    T(MSG_CONFIG_GET, kpu__link__v1__config_get__descriptor, "CONFIG_GET"),
    T(MSG_IMAGE_WRITE_BEGIN, kpu__link__v1__image_write_begin__descriptor, "IMAGE_WRITE_BEGIN"),
    T(MSG_IMAGE_WRITE_CHUNK, kpu__link__v1__model_upload_chunk__descriptor, "IMAGE_WRITE_CHUNK"),
    T(MSG_IMAGE_WRITE_COMMIT, kpu__link__v1__image_write_commit__descriptor, "IMAGE_WRITE_COMMIT"),
};

#undef T

const ProtobufCMessageDescriptor *klink_type_descriptor(uint8_t type)
{
    if (type >= sizeof(types) / sizeof(types[0]))
        return NULL;
    return types[type].desc;
}

const char *klink_type_name(uint8_t type)
{
    if (type >= sizeof(types) / sizeof(types[0]) || !types[type].name)
        return "UNKNOWN";
    return types[type].name;
}

unsigned klink_type_count(void)
{
    return (unsigned)(sizeof(types) / sizeof(types[0]));
}
