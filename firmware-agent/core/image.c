/* SPDX-License-Identifier: MIT */
/*
 * Writing the agent's own boot image to flash (ImageWrite* in link.proto; kpuctl agent
 * flash). The image is staged in the model RAM, which the loaded model gives up for the
 * transfer, and checked whole before flash is touched: the CRC-32C the host announced, the
 * boot ROM's header (AES flag 0, firmware length) and its SHA-256 trailer (usb-bridges.md
 * §1.6 item 7). Only then is the image slot (flash offset 0, KFA_STORE_IMAGE_RESERVE bytes,
 * store.h) erased, programmed and read back. A transfer that fails, stops or is replaced
 * leaves the flash as it was. A power cut between erase and the end of programming leaves
 * no bootable image (the ROM ISP still boots one into SRAM: docs/hardware.md).
 */
#include "agent_int.h"

#include <string.h>

#include "klink.h"
#include "sha256.h"
#include "util.h"

#define IMG_HEADER 5u /* AES flag + u32 firmware length */
#define IMG_MIN (IMG_HEADER + 1u + KFA_SHA256_LEN)
#define IMG_SECTOR 4096u /* hal.h: erase granularity */
#define IMG_VERIFY_PIECE 256u

static struct {
    int active;
    uint32_t id, size, crc, next;
    uint32_t committed_id; /* the last image written: a retried commit answers OK */
    int was_streaming;
} iw;
static uint32_t iw_ids;

int kfa_image_write_active(void)
{
    return iw.active;
}

/* Give the model RAM back: reload the selected model as an upload commit does. */
static void restore_model(void)
{
    char why[KFA_TEXT_MAX] = "";
    char sel[KFA_STORE_NAME_MAX];
    int was = iw.was_streaming;

    iw.active = 0;
    kfa_strlcpy(sel, kfa_store_selected(), sizeof(sel));
    if (sel[0] && kfa_model_activate(sel, why, sizeof(why)) < 0)
        kfa_log(kpu_link_v1_LogLevel_LOG_ERROR, "model %s: %s", sel, why);
    if (was && kfa_g.model_loaded && kfa_g.dec.ready)
        kfa_g.streaming = 1;
}

void kfa_image_write_abandon(void)
{
    if (!iw.active)
        return;
    kfa_log(kpu_link_v1_LogLevel_LOG_WARNING, "image write %u abandoned at %u of %u bytes",
            (unsigned)iw.id, (unsigned)iw.next, (unsigned)iw.size);
    restore_model();
}

void kfa_handle_image_begin(uint16_t seq, const kpu_link_v1_ImageWriteBegin *m)
{
    char text[KFA_TEXT_MAX] = "";
    size_t cap;
    uint32_t slot = KFA_STORE_IMAGE_RESERVE;

    cap = KFA_MODEL_RAM;
    if (iw.active && m->size == iw.size && m->crc32c == iw.crc) {
        kfa_send_upload_state(seq, iw.id, iw.next, 0, ""); /* resume */
        return;
    }
    if (iw.active)
        kfa_image_write_abandon();
    if (kfa_hal_flash_size() < slot) {
        kfa_send_upload_state(seq, 0, 0, -KFA_ST_FLASH_ERROR, "no flash for a boot image");
        return;
    }
    if (m->size < IMG_MIN) {
        kfa_fmt(text, sizeof(text), "size %u: a boot image has at least %u bytes",
                (unsigned)m->size, IMG_MIN);
        kfa_send_upload_state(seq, 0, 0, -KFA_ST_BAD_REQUEST, text);
        return;
    }
    if (m->size > slot || m->size > cap) {
        kfa_fmt(text, sizeof(text), "image of %u bytes, the slot holds %u", (unsigned)m->size,
                (unsigned)(slot < cap ? slot : cap));
        kfa_send_upload_state(seq, 0, 0, -KFA_ST_NO_SPACE, text);
        return;
    }
    if (kfa_g.snap.state != 0) {
        kfa_send_upload_state(seq, 0, 0, -KFA_ST_BUSY, "a snapshot is in progress");
        return;
    }
    iw.was_streaming = kfa_g.streaming;
    kfa_model_unload(); /* the model RAM becomes the staging buffer */
    iw.active = 1;
    iw.id = ++iw_ids;
    iw.size = m->size;
    iw.crc = m->crc32c;
    iw.next = 0;
    kfa_log(kpu_link_v1_LogLevel_LOG_INFO, "image write %u: %u bytes", (unsigned)iw.id,
            (unsigned)iw.size);
    kfa_send_upload_state(seq, iw.id, 0, 0, "");
}

void kfa_handle_image_chunk(uint16_t seq, const kpu_link_v1_ModelUploadChunk *m)
{
    size_t cap;
    uint8_t *stage = kfa_model_ram(&cap);
    uint32_t len = (uint32_t)m->data.size;

    if (!iw.active || m->upload_id != iw.id) {
        kfa_send_upload_state(seq, m->upload_id, 0, -KFA_ST_BAD_REQUEST,
                              "no such image write in progress");
        return;
    }
    if (m->offset != iw.next) {
        /* A retransmitted last chunk is acknowledged again; anything else is out of step. */
        int again = m->offset + len == iw.next && m->offset < iw.next;
        kfa_send_upload_state(seq, iw.id, iw.next, again ? 0 : -KFA_ST_BAD_OFFSET,
                              "chunk not at the expected offset");
        return;
    }
    if (len > iw.size - iw.next || len > cap - iw.next) {
        kfa_send_upload_state(seq, iw.id, iw.next, -KFA_ST_BAD_REQUEST,
                              "chunk runs past the announced size");
        return;
    }
    memcpy(stage + iw.next, m->data.bytes, len);
    iw.next += len;
    kfa_send_upload_state(seq, iw.id, iw.next, 0, "");
}

/* The checks the boot ROM would make, and the host's CRC. 0 or -KFA_ST_* with text. */
static int check_image(const uint8_t *img, uint32_t size, char *text, size_t cap)
{
    uint8_t digest[KFA_SHA256_LEN];
    uint32_t fw_len;

    if (klink_crc32c(0, img, size) != iw.crc) {
        kfa_fmt(text, cap, "CRC-32C of the %u bytes received does not match", (unsigned)size);
        return -KFA_ST_CRC_MISMATCH;
    }
    if (img[0] != 0) {
        kfa_fmt(text, cap, "AES flag %u: encrypted images are not supported", (unsigned)img[0]);
        return -KFA_ST_BAD_REQUEST;
    }
    fw_len = kfa_get_le32(img + 1);
    if (fw_len != size - IMG_HEADER - KFA_SHA256_LEN) {
        kfa_fmt(text, cap, "header says %u firmware bytes, image carries %u", (unsigned)fw_len,
                (unsigned)(size - IMG_HEADER - KFA_SHA256_LEN));
        return -KFA_ST_BAD_REQUEST;
    }
    kfa_sha256(img, size - KFA_SHA256_LEN, digest);
    if (memcmp(digest, img + size - KFA_SHA256_LEN, KFA_SHA256_LEN) != 0) {
        kfa_fmt(text, cap, "SHA-256 trailer does not match the image");
        return -KFA_ST_CRC_MISMATCH;
    }
    return 0;
}

/* Erase, program and read back the image slot. 0 or -KFA_ST_FLASH_ERROR with text. */
static int program(const uint8_t *img, uint32_t size, char *text, size_t cap)
{
    uint32_t span = (size + IMG_SECTOR - 1u) / IMG_SECTOR * IMG_SECTOR;
    uint8_t back[IMG_VERIFY_PIECE];

    for (uint32_t off = 0; off < span; off += IMG_SECTOR) {
        kfa_hal_watchdog_kick();
        if (kfa_hal_flash_erase(off, IMG_SECTOR) != 0) {
            kfa_fmt(text, cap, "erase at 0x%x failed", (unsigned)off);
            return -KFA_ST_FLASH_ERROR;
        }
    }
    for (uint32_t off = 0; off < size; off += IMG_SECTOR) {
        uint32_t n = size - off < IMG_SECTOR ? size - off : IMG_SECTOR;
        kfa_hal_watchdog_kick();
        if (kfa_hal_flash_write(off, img + off, n) != 0) {
            kfa_fmt(text, cap, "program at 0x%x failed", (unsigned)off);
            return -KFA_ST_FLASH_ERROR;
        }
    }
    for (uint32_t off = 0; off < size; off += IMG_VERIFY_PIECE) {
        uint32_t n = size - off < IMG_VERIFY_PIECE ? size - off : IMG_VERIFY_PIECE;
        if (kfa_hal_flash_read(off, back, n) != 0 || memcmp(back, img + off, n) != 0) {
            kfa_fmt(text, cap, "read-back at 0x%x differs", (unsigned)off);
            return -KFA_ST_FLASH_ERROR;
        }
    }
    return 0;
}

void kfa_handle_image_commit(uint16_t seq, const kpu_link_v1_ImageWriteCommit *m)
{
    char text[KFA_TEXT_MAX] = "";
    size_t cap;
    const uint8_t *stage = kfa_model_ram(&cap);
    int r;

    if (!iw.active && m->upload_id != 0 && m->upload_id == iw.committed_id) {
        kfa_reply_status(seq, 0, ""); /* our answer to the first commit was lost */
        return;
    }
    if (!iw.active || m->upload_id != iw.id) {
        kfa_reply_status(seq, KFA_ST_BAD_REQUEST, "no such image write in progress");
        return;
    }
    if (iw.next != iw.size) {
        kfa_fmt(text, sizeof(text), "image incomplete: %u of %u bytes", (unsigned)iw.next,
                (unsigned)iw.size);
        kfa_reply_status(seq, KFA_ST_BAD_OFFSET, text);
        return;
    }
    r = check_image(stage, iw.size, text, sizeof(text));
    if (r == 0)
        r = program(stage, iw.size, text, sizeof(text));
    if (r == 0) {
        iw.committed_id = iw.id;
        kfa_log(kpu_link_v1_LogLevel_LOG_INFO, "image write %u: %u bytes written and verified",
                (unsigned)iw.id, (unsigned)iw.size);
    } else {
        kfa_log(kpu_link_v1_LogLevel_LOG_ERROR, "image write %u refused: %s", (unsigned)iw.id,
                text);
    }
    restore_model();
    kfa_reply_status(seq, -r, text);
}
