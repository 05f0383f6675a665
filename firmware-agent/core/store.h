/* SPDX-License-Identifier: MIT */
/*
 * The agent's model store and persisted configuration in SPI flash, through the HAL flash
 * functions only. Layout (docs/agent.md "Flash layout"):
 *
 *   0x000000  agent image (KFA_STORE_IMAGE_RESERVE, not touched here)
 *   0x100000  directory, slot A     one sector each; the valid slot with the higher
 *   0x101000  directory, slot B     generation wins (kfa_flashrec)
 *   0x102000  persisted config, slot A
 *   0x103000  persisted config, slot B
 *   0x110000  model data regions up to the end of flash, sector-aligned:
 *             kmodel bytes, then the manifest bytes
 *
 * An upload writes only into free space (never over a committed region) and the directory
 * entry is written, as a new directory generation in the other slot, only after the data
 * CRC-32C and the kmodel loader have accepted the file. A power cut at any point leaves the
 * previous directory, and so the previous store, intact.
 *
 * Errors are returned as negative kpu.link.v1.StatusCode values (-KFA_ST_*, status.h), with a line
 * of text for the Status reply where the caller passes a buffer.
 */
#ifndef KFA_STORE_H
#define KFA_STORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KFA_STORE_MAX_MODELS 8u      /* link.options: AgentHello.models max_count:8 */
#define KFA_STORE_NAME_MAX 32u       /* link.options: StoredModel.name max_size:32, NUL included */
#define KFA_STORE_MANIFEST_MAX 1536u /* link.options: ModelUploadBegin.manifest max_size */

#define KFA_STORE_IMAGE_RESERVE 0x100000u /* first 1 MiB: the agent image */
#define KFA_STORE_DIR_A 0x100000u
#define KFA_STORE_DIR_B 0x101000u
#define KFA_STORE_CFG_A 0x102000u
#define KFA_STORE_CFG_B 0x103000u
#define KFA_STORE_DATA_BASE 0x110000u

/* Record magics ("KDIR", "KCFG" little-endian). */
#define KFA_STORE_DIR_MAGIC 0x5249444bu
#define KFA_STORE_CFG_MAGIC 0x4746434bu

/* One committed model. */
struct kfa_store_entry {
    char name[KFA_STORE_NAME_MAX]; /* NUL-terminated, [A-Za-z0-9._-]{1,31} */
    uint32_t offset;               /* flash offset of the kmodel bytes (sector-aligned) */
    uint32_t size;                 /* kmodel bytes */
    uint32_t crc32c;               /* of the kmodel bytes */
    uint32_t manifest_len;         /* manifest bytes, stored right after the kmodel */
    uint32_t manifest_crc;         /* CRC-32C of the manifest bytes */
};

/*
 * kfa_store_open - read the directory from flash (the valid slot with the highest
 * generation; an empty store if neither is valid) and forget any upload in progress.
 * Returns 0, or -KFA_ST_FLASH_ERROR if there is no flash big enough for the layout (the
 * store then stays empty and every write fails with KFA_ST_NO_SPACE).
 */
int kfa_store_open(void);

/* kfa_store_count - committed models. */
unsigned kfa_store_count(void);

/* kfa_store_entry_at - entry i (0 <= i < count), or NULL. Valid until the next store call. */
const struct kfa_store_entry *kfa_store_entry_at(unsigned i);

/* kfa_store_find - the entry with this name, or NULL. */
const struct kfa_store_entry *kfa_store_find(const char *name);

/* kfa_store_selected - the selected model's name ("" if none). */
const char *kfa_store_selected(void);

/* kfa_store_free_bytes - bytes of the data area not used by committed models. */
uint32_t kfa_store_free_bytes(void);

/* kfa_store_name_valid - 1 if name matches [A-Za-z0-9._-]{1,31}. */
int kfa_store_name_valid(const char *name);

/*
 * kfa_store_read - read len bytes at off within entry e's kmodel (manifest when
 * manifest != 0). Returns 0 or -KFA_ST_BAD_REQUEST (out of range) / -KFA_ST_FLASH_ERROR.
 */
int kfa_store_read(const struct kfa_store_entry *e, int manifest, uint32_t off, void *buf,
                   size_t len);

/*
 * kfa_store_load - read entry e's kmodel into ram (cap bytes) and check its CRC-32C.
 * Returns 0, -KFA_ST_NO_SPACE if it does not fit, -KFA_ST_FLASH_ERROR on a read error or
 * CRC mismatch (text says which).
 */
int kfa_store_load(const struct kfa_store_entry *e, uint8_t *ram, size_t cap, char *text,
                   size_t text_cap);

/*
 * Validator the commit calls with the complete model in RAM: returns 0 to accept, or a
 * negative value with a one-line reason in text to refuse (KFA_ST_MODEL_INVALID).
 */
typedef int (*kfa_store_validate_fn)(const uint8_t *data, size_t size, char *text, size_t text_cap);

/*
 * kfa_store_upload_begin - start (or resume) an upload. A begin with the same name, size,
 * CRC and manifest as the upload in progress resumes it: *ret_id is the same id and
 * *ret_next the next offset wanted. Otherwise any upload in progress is abandoned and a
 * free region is reserved (in RAM only; nothing is written yet).
 * Returns 0, -KFA_ST_BAD_REQUEST (name, size 0, manifest too long), -KFA_ST_NO_SPACE.
 */
int kfa_store_upload_begin(const char *name, uint32_t size, uint32_t crc32c,
                           const uint8_t *manifest, size_t manifest_len, size_t ram_cap,
                           uint32_t *ret_id, uint32_t *ret_next, char *text, size_t text_cap);

/*
 * kfa_store_upload_chunk - write data at offset of upload id. offset must equal the next
 * offset (else -KFA_ST_BAD_OFFSET; *ret_next tells where to continue). Erases sectors just
 * before first writing into them. Returns 0, -KFA_ST_BAD_REQUEST (unknown id, empty or
 * too long chunk), -KFA_ST_BAD_OFFSET, -KFA_ST_FLASH_ERROR.
 */
int kfa_store_upload_chunk(uint32_t id, uint32_t offset, const uint8_t *data, size_t len,
                           uint32_t *ret_next, char *text, size_t text_cap);

/*
 * kfa_store_upload_commit - finish upload id: check the running CRC-32C, read the data
 * back into ram (cap bytes) and check it again, run validate on it, write the manifest,
 * then write the new directory generation. A model with the same name is replaced; the
 * first model of an empty store becomes the selected one. Committing the id just committed
 * again returns 0 (a retried request). ram is clobbered either way.
 * Returns 0 or -KFA_ST_BAD_REQUEST (unknown id, incomplete), -KFA_ST_CRC_MISMATCH,
 * -KFA_ST_MODEL_INVALID, -KFA_ST_FLASH_ERROR, -KFA_ST_NO_SPACE.
 */
int kfa_store_upload_commit(uint32_t id, uint8_t *ram, size_t cap, kfa_store_validate_fn validate,
                            char *text, size_t text_cap);

/* kfa_store_upload_next - next offset of upload id, or 0 if it is not the active upload. */
uint32_t kfa_store_upload_next(uint32_t id);

/*
 * kfa_store_delete - remove a model (a new directory generation without it). Deleting the
 * selected model clears the selection. Returns 0, -KFA_ST_NO_SUCH_MODEL,
 * -KFA_ST_FLASH_ERROR.
 */
int kfa_store_delete(const char *name);

/*
 * kfa_store_select - make name the selected model and persist that in the directory (""
 * clears it). Returns 0, -KFA_ST_NO_SUCH_MODEL, -KFA_ST_FLASH_ERROR.
 */
int kfa_store_select(const char *name);

/* ---- two-slot flash records (directory, persisted config) ---------------------------- */

#define KFA_FLASHREC_HEADER 16u /* magic, generation, length, CRC-32C: u32 LE each */
#define KFA_FLASHREC_MAX_PAYLOAD (4096u - KFA_FLASHREC_HEADER)

/*
 * kfa_flashrec_load - read the record pair at sectors a and b: the slot whose magic and
 * CRC are valid, the higher generation if both are. Copies its payload (up to cap bytes)
 * to buf. Returns the payload length (>= 0) and sets *gen, or -1 if neither slot is valid.
 */
int kfa_flashrec_load(uint32_t a, uint32_t b, uint32_t magic, void *buf, size_t cap, uint32_t *gen);

/*
 * kfa_flashrec_store - write payload as generation gen+1 into the slot that does not hold
 * the current valid record (erase, then write). Returns 0 and sets *gen to the new
 * generation, or -KFA_ST_BAD_REQUEST (too long) / -KFA_ST_FLASH_ERROR.
 */
int kfa_flashrec_store(uint32_t a, uint32_t b, uint32_t magic, const void *payload, size_t len,
                       uint32_t *gen);

#ifdef __cplusplus
}
#endif

#endif /* KFA_STORE_H */
