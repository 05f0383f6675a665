/* SPDX-License-Identifier: MIT */
/*
 * Model store and two-slot flash records (layout in store.h and docs/agent.md). All state
 * is static; flash is reached only through kfa_hal_flash_*.
 *
 * Directory payload (little-endian): u32 count, char selected[32], then count entries of
 * { char name[32]; u32 offset, size, crc32c, manifest_len, manifest_crc }.
 */
#include "store.h"

#include <string.h>

#include "hal/hal.h"
#include "klink.h"
#include "status.h"
#include "util.h"

#define SECTOR KFA_HAL_FLASH_SECTOR
#define ENTRY_WIRE (KFA_STORE_NAME_MAX + 5u * 4u)
#define DIR_WIRE (4u + KFA_STORE_NAME_MAX + KFA_STORE_MAX_MODELS * ENTRY_WIRE)
#define COPY_CHUNK 512u /* bytes per flash read while checking a CRC */

struct upload {
    uint32_t id; /* 0 = none */
    char name[KFA_STORE_NAME_MAX];
    uint32_t size;       /* kmodel bytes announced */
    uint32_t crc32c;     /* announced CRC-32C */
    uint32_t region;     /* flash offset of the reserved region */
    uint32_t region_len; /* sector-aligned length of the region */
    uint32_t next;       /* bytes received and written */
    uint32_t erased;     /* bytes of the region erased so far (sector multiple) */
    uint32_t running;    /* CRC-32C of the bytes received */
    uint32_t manifest_len;
    uint8_t manifest[KFA_STORE_MANIFEST_MAX];
};

static struct {
    int usable;   /* flash big enough for the layout */
    uint32_t gen; /* directory generation */
    unsigned count;
    char selected[KFA_STORE_NAME_MAX];
    struct kfa_store_entry e[KFA_STORE_MAX_MODELS];
    struct upload up;
    uint32_t last_id;        /* upload ids handed out */
    uint32_t last_committed; /* id of the last upload committed */
    uint8_t wire[DIR_WIRE];  /* directory serialisation buffer */
    uint8_t io[COPY_CHUNK];
} st;

/* ---- two-slot records ----------------------------------------------------------- */

static uint8_t rec_buf[SECTOR];

static int rec_read(uint32_t at, uint32_t magic, uint32_t *gen, uint32_t *len)
{
    uint32_t crc;

    if (kfa_hal_flash_read(at, rec_buf, KFA_FLASHREC_HEADER) != 0)
        return -1;
    if (kfa_get_le32(rec_buf) != magic)
        return -1;
    *gen = kfa_get_le32(rec_buf + 4);
    *len = kfa_get_le32(rec_buf + 8);
    if (*len > KFA_FLASHREC_MAX_PAYLOAD)
        return -1;
    if (kfa_hal_flash_read(at + KFA_FLASHREC_HEADER, rec_buf + KFA_FLASHREC_HEADER, *len) != 0)
        return -1;
    crc = klink_crc32c(0, rec_buf, 12);
    crc = klink_crc32c(crc, rec_buf + KFA_FLASHREC_HEADER, *len);
    return crc == kfa_get_le32(rec_buf + 12) ? 0 : -1;
}

/* Which slot holds the valid record: 0 = a, 1 = b, -1 none. */
static int rec_pick(uint32_t a, uint32_t b, uint32_t magic, uint32_t *gen)
{
    uint32_t ga = 0, gb = 0, la, lb;
    int va = rec_read(a, magic, &ga, &la) == 0;
    int vb = rec_read(b, magic, &gb, &lb) == 0;

    if (va && (!vb || (int32_t)(ga - gb) > 0)) {
        *gen = ga;
        return 0;
    }
    if (vb) {
        *gen = gb;
        return 1;
    }
    return -1;
}

int kfa_flashrec_load(uint32_t a, uint32_t b, uint32_t magic, void *buf, size_t cap, uint32_t *gen)
{
    uint32_t g, len;
    int slot = rec_pick(a, b, magic, &g);

    if (slot < 0 || rec_read(slot ? b : a, magic, &g, &len) != 0)
        return -1;
    if (len > cap)
        len = (uint32_t)cap;
    memcpy(buf, rec_buf + KFA_FLASHREC_HEADER, len);
    *gen = g;
    return (int)len;
}

int kfa_flashrec_store(uint32_t a, uint32_t b, uint32_t magic, const void *payload, size_t len,
                       uint32_t *gen)
{
    uint32_t g = 0, crc, at;
    int slot;

    if (len > KFA_FLASHREC_MAX_PAYLOAD)
        return -KFA_ST_BAD_REQUEST;
    slot = rec_pick(a, b, magic, &g);
    /* Write the slot that does not hold the live record, so that a cut keeps it. */
    at = slot == 0 ? b : a;
    g = slot < 0 ? 1 : g + 1;
    kfa_put_le32(rec_buf, magic);
    kfa_put_le32(rec_buf + 4, g);
    kfa_put_le32(rec_buf + 8, (uint32_t)len);
    memcpy(rec_buf + KFA_FLASHREC_HEADER, payload, len);
    crc = klink_crc32c(0, rec_buf, 12);
    crc = klink_crc32c(crc, payload, len);
    kfa_put_le32(rec_buf + 12, crc);
    if (kfa_hal_flash_erase(at, SECTOR) != 0)
        return -KFA_ST_FLASH_ERROR;
    if (kfa_hal_flash_write(at, rec_buf, KFA_FLASHREC_HEADER + len) != 0)
        return -KFA_ST_FLASH_ERROR;
    *gen = g;
    return 0;
}

/* ---- directory -------------------------------------------------------------------- */

static uint32_t align_sector(uint32_t n)
{
    return (n + SECTOR - 1u) & ~(SECTOR - 1u);
}

static uint32_t entry_span(const struct kfa_store_entry *e)
{
    return align_sector(e->size + e->manifest_len);
}

static size_t dir_pack(const struct kfa_store_entry *e, unsigned count, const char *selected)
{
    uint8_t *p = st.wire;

    memset(st.wire, 0, sizeof(st.wire));
    kfa_put_le32(p, count);
    p += 4;
    kfa_strlcpy((char *)p, selected, KFA_STORE_NAME_MAX);
    p += KFA_STORE_NAME_MAX;
    for (unsigned i = 0; i < count; i++) {
        kfa_strlcpy((char *)p, e[i].name, KFA_STORE_NAME_MAX);
        p += KFA_STORE_NAME_MAX;
        kfa_put_le32(p, e[i].offset);
        kfa_put_le32(p + 4, e[i].size);
        kfa_put_le32(p + 8, e[i].crc32c);
        kfa_put_le32(p + 12, e[i].manifest_len);
        kfa_put_le32(p + 16, e[i].manifest_crc);
        p += 20;
    }
    return (size_t)(p - st.wire);
}

/* Parse a directory payload; a structurally bad one (CRC was fine) is treated as empty. */
static void dir_unpack(const uint8_t *p, size_t len)
{
    uint32_t count, fsize = kfa_hal_flash_size();

    st.count = 0;
    st.selected[0] = '\0';
    if (len < 4u + KFA_STORE_NAME_MAX)
        return;
    count = kfa_get_le32(p);
    if (count > KFA_STORE_MAX_MODELS || len < 4u + KFA_STORE_NAME_MAX + count * ENTRY_WIRE)
        return;
    kfa_strlcpy(st.selected, (const char *)p + 4, KFA_STORE_NAME_MAX);
    p += 4 + KFA_STORE_NAME_MAX;
    for (uint32_t i = 0; i < count; i++, p += ENTRY_WIRE) {
        struct kfa_store_entry *e = &st.e[st.count];

        kfa_strlcpy(e->name, (const char *)p, KFA_STORE_NAME_MAX);
        e->offset = kfa_get_le32(p + KFA_STORE_NAME_MAX);
        e->size = kfa_get_le32(p + KFA_STORE_NAME_MAX + 4);
        e->crc32c = kfa_get_le32(p + KFA_STORE_NAME_MAX + 8);
        e->manifest_len = kfa_get_le32(p + KFA_STORE_NAME_MAX + 12);
        e->manifest_crc = kfa_get_le32(p + KFA_STORE_NAME_MAX + 16);
        /* Entries that do not fit the data area are dropped, not trusted. */
        if (!kfa_store_name_valid(e->name) || e->offset < KFA_STORE_DATA_BASE || e->size == 0 ||
            e->manifest_len > KFA_STORE_MANIFEST_MAX || e->offset > fsize ||
            entry_span(e) > fsize - e->offset)
            continue;
        st.count++;
    }
    if (!kfa_store_find(st.selected))
        st.selected[0] = '\0';
}

static int dir_write(const struct kfa_store_entry *e, unsigned count, const char *selected)
{
    size_t n = dir_pack(e, count, selected);
    uint32_t gen;
    int r =
        kfa_flashrec_store(KFA_STORE_DIR_A, KFA_STORE_DIR_B, KFA_STORE_DIR_MAGIC, st.wire, n, &gen);

    if (r < 0)
        return r;
    st.gen = gen;
    if (e != st.e)
        memcpy(st.e, e, count * sizeof(*e));
    st.count = count;
    kfa_strlcpy(st.selected, selected, sizeof(st.selected));
    return 0;
}

int kfa_store_open(void)
{
    uint32_t gen;
    int n;

    memset(&st, 0, sizeof(st));
    st.usable = kfa_hal_flash_size() >= KFA_STORE_DATA_BASE + SECTOR;
    if (!st.usable)
        return -KFA_ST_FLASH_ERROR;
    n = kfa_flashrec_load(KFA_STORE_DIR_A, KFA_STORE_DIR_B, KFA_STORE_DIR_MAGIC, st.wire,
                          sizeof(st.wire), &gen);
    if (n >= 0) {
        st.gen = gen;
        dir_unpack(st.wire, (size_t)n);
    }
    return 0;
}

unsigned kfa_store_count(void)
{
    return st.count;
}

const struct kfa_store_entry *kfa_store_entry_at(unsigned i)
{
    return i < st.count ? &st.e[i] : NULL;
}

const struct kfa_store_entry *kfa_store_find(const char *name)
{
    for (unsigned i = 0; i < st.count; i++)
        if (strncmp(st.e[i].name, name, KFA_STORE_NAME_MAX) == 0)
            return &st.e[i];
    return NULL;
}

const char *kfa_store_selected(void)
{
    return st.selected;
}

uint32_t kfa_store_free_bytes(void)
{
    uint32_t fsize = kfa_hal_flash_size(), used = 0;

    if (!st.usable)
        return 0;
    for (unsigned i = 0; i < st.count; i++)
        used += entry_span(&st.e[i]);
    return fsize - KFA_STORE_DATA_BASE - used;
}

int kfa_store_name_valid(const char *name)
{
    size_t n = 0;

    for (; name[n]; n++) {
        char c = name[n];

        if (n >= KFA_STORE_NAME_MAX - 1u)
            return 0;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

int kfa_store_read(const struct kfa_store_entry *e, int manifest, uint32_t off, void *buf,
                   size_t len)
{
    uint32_t lim = manifest ? e->manifest_len : e->size;
    uint32_t base = manifest ? e->offset + e->size : e->offset;

    if (off > lim || len > lim - off)
        return -KFA_ST_BAD_REQUEST;
    return kfa_hal_flash_read(base + off, buf, len) == 0 ? 0 : -KFA_ST_FLASH_ERROR;
}

int kfa_store_load(const struct kfa_store_entry *e, uint8_t *ram, size_t cap, char *text,
                   size_t text_cap)
{
    if (e->size > cap) {
        kfa_fmt(text, text_cap, "model %s needs %u bytes of RAM, have %u", e->name,
                (unsigned)e->size, (unsigned)cap);
        return -KFA_ST_NO_SPACE;
    }
    if (kfa_hal_flash_read(e->offset, ram, e->size) != 0) {
        kfa_fmt(text, text_cap, "flash read of model %s failed", e->name);
        return -KFA_ST_FLASH_ERROR;
    }
    if (klink_crc32c(0, ram, e->size) != e->crc32c) {
        kfa_fmt(text, text_cap, "model %s: stored CRC-32C does not match", e->name);
        return -KFA_ST_FLASH_ERROR;
    }
    return 0;
}

/* ---- upload ----------------------------------------------------------------------- */

/* First-fit: lowest free sector-aligned region of len bytes not overlapping an entry. */
static int find_region(uint32_t len, uint32_t *ret)
{
    uint32_t at = KFA_STORE_DATA_BASE, end = kfa_hal_flash_size();

    for (;;) {
        int moved = 0;

        if (at > end || len > end - at)
            return -1;
        for (unsigned i = 0; i < st.count; i++) {
            uint32_t s = st.e[i].offset, t = s + entry_span(&st.e[i]);

            if (at < t && s < at + len) {
                at = t;
                moved = 1;
            }
        }
        if (!moved) {
            *ret = at;
            return 0;
        }
    }
}

int kfa_store_upload_begin(const char *name, uint32_t size, uint32_t crc32c,
                           const uint8_t *manifest, size_t manifest_len, size_t ram_cap,
                           uint32_t *ret_id, uint32_t *ret_next, char *text, size_t text_cap)
{
    struct upload *u = &st.up;
    uint32_t len, region;

    if (!kfa_store_name_valid(name)) {
        kfa_fmt(text, text_cap, "name: want [A-Za-z0-9._-]{1,31}");
        return -KFA_ST_BAD_REQUEST;
    }
    if (size == 0) {
        kfa_fmt(text, text_cap, "size: must be > 0");
        return -KFA_ST_BAD_REQUEST;
    }
    if (manifest_len > KFA_STORE_MANIFEST_MAX) {
        kfa_fmt(text, text_cap, "manifest: at most %u bytes", KFA_STORE_MANIFEST_MAX);
        return -KFA_ST_BAD_REQUEST;
    }
    if (u->id && strcmp(u->name, name) == 0 && u->size == size && u->crc32c == crc32c &&
        u->manifest_len == manifest_len && memcmp(u->manifest, manifest, manifest_len) == 0) {
        *ret_id = u->id;
        *ret_next = u->next;
        return 0;
    }
    memset(u, 0, sizeof(*u));
    if (!st.usable) {
        kfa_fmt(text, text_cap, "no flash for a model store");
        return -KFA_ST_NO_SPACE;
    }
    if (size > ram_cap) {
        kfa_fmt(text, text_cap, "size: %u bytes > %u bytes of model RAM", (unsigned)size,
                (unsigned)ram_cap);
        return -KFA_ST_NO_SPACE;
    }
    if (!kfa_store_find(name) && st.count >= KFA_STORE_MAX_MODELS) {
        kfa_fmt(text, text_cap, "store full (%u models); delete one first", KFA_STORE_MAX_MODELS);
        return -KFA_ST_NO_SPACE;
    }
    len = align_sector(size + (uint32_t)manifest_len);
    if (size > UINT32_MAX - SECTOR * 2u || find_region(len, &region) != 0) {
        kfa_fmt(text, text_cap, "no free region of %u bytes (free %u)", (unsigned)len,
                (unsigned)kfa_store_free_bytes());
        return -KFA_ST_NO_SPACE;
    }
    kfa_strlcpy(u->name, name, sizeof(u->name));
    u->size = size;
    u->crc32c = crc32c;
    u->region = region;
    u->region_len = len;
    u->manifest_len = (uint32_t)manifest_len;
    if (manifest_len)
        memcpy(u->manifest, manifest, manifest_len);
    u->id = ++st.last_id;
    if (u->id == 0)
        u->id = ++st.last_id;
    *ret_id = u->id;
    *ret_next = 0;
    return 0;
}

/* Program [off, off+len) of the upload region, erasing sectors first as needed. */
static int region_write(struct upload *u, uint32_t off, const void *data, size_t len)
{
    while (u->erased < off + len) {
        if (kfa_hal_flash_erase(u->region + u->erased, SECTOR) != 0)
            return -KFA_ST_FLASH_ERROR;
        u->erased += SECTOR;
    }
    return kfa_hal_flash_write(u->region + off, data, len) == 0 ? 0 : -KFA_ST_FLASH_ERROR;
}

int kfa_store_upload_chunk(uint32_t id, uint32_t offset, const uint8_t *data, size_t len,
                           uint32_t *ret_next, char *text, size_t text_cap)
{
    struct upload *u = &st.up;
    int r;

    *ret_next = 0;
    if (id == 0 || u->id != id) {
        kfa_fmt(text, text_cap, "upload_id %u: no such upload", (unsigned)id);
        return -KFA_ST_BAD_REQUEST;
    }
    *ret_next = u->next;
    if (offset != u->next) {
        kfa_fmt(text, text_cap, "offset %u: expected %u", (unsigned)offset, (unsigned)u->next);
        return -KFA_ST_BAD_OFFSET;
    }
    if (len == 0 || len > u->size - u->next) {
        kfa_fmt(text, text_cap, "data: %u bytes at %u exceeds size %u", (unsigned)len,
                (unsigned)offset, (unsigned)u->size);
        return -KFA_ST_BAD_REQUEST;
    }
    r = region_write(u, offset, data, len);
    if (r < 0) {
        kfa_fmt(text, text_cap, "flash write at %u failed", (unsigned)offset);
        return r;
    }
    u->running = klink_crc32c(u->running, data, len);
    u->next += (uint32_t)len;
    *ret_next = u->next;
    return 0;
}

uint32_t kfa_store_upload_next(uint32_t id)
{
    return id && st.up.id == id ? st.up.next : 0;
}

static void upload_abandon(void)
{
    memset(&st.up, 0, sizeof(st.up));
}

int kfa_store_upload_commit(uint32_t id, uint8_t *ram, size_t cap, kfa_store_validate_fn validate,
                            char *text, size_t text_cap)
{
    struct upload *u = &st.up;
    struct kfa_store_entry ne[KFA_STORE_MAX_MODELS], *e;
    unsigned n = 0;
    const char *sel;
    int r;

    if (id != 0 && id == st.last_committed && u->id == 0)
        return 0; /* a retry of the commit that already succeeded */
    if (id == 0 || u->id != id) {
        kfa_fmt(text, text_cap, "upload_id %u: no such upload", (unsigned)id);
        return -KFA_ST_BAD_REQUEST;
    }
    if (u->next != u->size) {
        kfa_fmt(text, text_cap, "incomplete: %u of %u bytes", (unsigned)u->next, (unsigned)u->size);
        return -KFA_ST_BAD_REQUEST;
    }
    if (u->running != u->crc32c) {
        kfa_fmt(text, text_cap, "crc32c: received %08x, announced %08x", (unsigned)u->running,
                (unsigned)u->crc32c);
        upload_abandon();
        return -KFA_ST_CRC_MISMATCH;
    }
    if (u->size > cap) {
        upload_abandon();
        kfa_fmt(text, text_cap, "no RAM to validate the model");
        return -KFA_ST_NO_SPACE;
    }
    /* Read back what flash holds: the CRC must hold for the stored bytes, not the sent. */
    if (kfa_hal_flash_read(u->region, ram, u->size) != 0 ||
        klink_crc32c(0, ram, u->size) != u->crc32c) {
        kfa_fmt(text, text_cap, "flash read-back does not match the CRC-32C");
        upload_abandon();
        return -KFA_ST_FLASH_ERROR;
    }
    if (validate && (r = validate(ram, u->size, text, text_cap)) != 0) {
        upload_abandon();
        return -KFA_ST_MODEL_INVALID;
    }
    if (u->manifest_len) {
        r = region_write(u, u->size, u->manifest, u->manifest_len);
        if (r < 0) {
            kfa_fmt(text, text_cap, "flash write of the manifest failed");
            upload_abandon();
            return r;
        }
    }
    for (unsigned i = 0; i < st.count; i++)
        if (strcmp(st.e[i].name, u->name) != 0)
            ne[n++] = st.e[i];
    e = &ne[n++];
    memset(e, 0, sizeof(*e));
    kfa_strlcpy(e->name, u->name, sizeof(e->name));
    e->offset = u->region;
    e->size = u->size;
    e->crc32c = u->crc32c;
    e->manifest_len = u->manifest_len;
    e->manifest_crc = klink_crc32c(0, u->manifest, u->manifest_len);
    sel = st.selected[0] ? st.selected : u->name;
    r = dir_write(ne, n, sel);
    if (r < 0) {
        kfa_fmt(text, text_cap, "flash write of the directory failed");
        upload_abandon();
        return r;
    }
    st.last_committed = u->id;
    upload_abandon();
    return 0;
}

int kfa_store_delete(const char *name)
{
    struct kfa_store_entry ne[KFA_STORE_MAX_MODELS];
    unsigned n = 0;

    if (!kfa_store_find(name))
        return -KFA_ST_NO_SUCH_MODEL;
    for (unsigned i = 0; i < st.count; i++)
        if (strcmp(st.e[i].name, name) != 0)
            ne[n++] = st.e[i];
    return dir_write(ne, n, strcmp(st.selected, name) == 0 ? "" : st.selected);
}

int kfa_store_select(const char *name)
{
    struct kfa_store_entry ne[KFA_STORE_MAX_MODELS];

    if (name[0] && !kfa_store_find(name))
        return -KFA_ST_NO_SUCH_MODEL;
    if (strcmp(name, st.selected) == 0)
        return 0;
    memcpy(ne, st.e, sizeof(ne));
    return dir_write(ne, st.count, name);
}
