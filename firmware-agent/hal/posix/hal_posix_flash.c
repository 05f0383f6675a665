/* SPDX-License-Identifier: MIT */
/*
 * POSIX HAL: SPI NOR flash in a file (mmap) or in memory. Programming only clears bits
 * (like NOR: an unerased byte ANDs), erase sets sectors to 0xFF. The power-cut door tears
 * one operation and fails the rest, for the model store's atomicity tests.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hal/hal.h"
#include "hal_posix.h"

static struct {
    uint8_t *mem;
    uint32_t size;
    int mapped;
    unsigned long ops;
    long cut; /* operations left before the cut; -1 = none */
    int dead; /* power is gone */
} f = {.cut = -1};

static void release(void)
{
    if (f.mem && f.mapped)
        munmap(f.mem, f.size);
    else
        free(f.mem);
    f.mem = NULL;
    f.size = 0;
    f.mapped = 0;
}

int kfa_posix_flash_use_ram(uint32_t size)
{
    release();
    if (size % KFA_HAL_FLASH_SECTOR)
        return -1;
    f.mem = malloc(size);
    if (!f.mem)
        return -1;
    memset(f.mem, 0xff, size);
    f.size = size;
    f.ops = 0;
    f.cut = -1;
    f.dead = 0;
    return 0;
}

int kfa_posix_flash_use_file(const char *path, uint32_t size)
{
    struct stat st;
    void *p;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0)
        goto fail;
    if (st.st_size == 0) {
        uint8_t ff[KFA_HAL_FLASH_SECTOR];

        memset(ff, 0xff, sizeof(ff));
        for (uint32_t off = 0; off < size; off += sizeof(ff))
            if (pwrite(fd, ff, sizeof(ff), off) != (ssize_t)sizeof(ff))
                goto fail;
    } else {
        if (st.st_size % KFA_HAL_FLASH_SECTOR || st.st_size > UINT32_MAX)
            goto fail;
        size = (uint32_t)st.st_size;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        goto fail;
    close(fd);
    release();
    f.mem = p;
    f.size = size;
    f.mapped = 1;
    f.ops = 0;
    f.cut = -1;
    f.dead = 0;
    return 0;
fail:
    close(fd);
    return -1;
}

void kfa_posix_flash_erase_all(void)
{
    if (f.mem)
        memset(f.mem, 0xff, f.size);
}

void kfa_posix_flash_cut_after(long n)
{
    f.cut = n;
    f.dead = 0;
}

unsigned long kfa_posix_flash_ops(void)
{
    return f.ops;
}

uint8_t *kfa_posix_flash_ptr(void)
{
    return f.mem;
}

uint32_t kfa_hal_flash_size(void)
{
    return f.size;
}

static int in_range(uint32_t off, size_t len)
{
    return f.mem && off <= f.size && len <= f.size - off;
}

int kfa_hal_flash_read(uint32_t offset, void *buf, size_t len)
{
    if (!in_range(offset, len))
        return KFA_HAL_E_RANGE;
    memcpy(buf, f.mem + offset, len);
    return 0;
}

/* Count an operation; returns the fraction of it that happens: 2 all, 1 half, 0 none. */
static int power(void)
{
    if (f.dead)
        return 0;
    f.ops++;
    if (f.cut < 0)
        return 2;
    if (f.cut == 0) {
        f.dead = 1;
        return 1;
    }
    f.cut--;
    return 2;
}

int kfa_hal_flash_erase(uint32_t offset, uint32_t len)
{
    int p;

    if (offset % KFA_HAL_FLASH_SECTOR || len % KFA_HAL_FLASH_SECTOR || !in_range(offset, len))
        return KFA_HAL_E_RANGE;
    p = power();
    if (p == 0)
        return KFA_HAL_E_IO;
    memset(f.mem + offset, 0xff, p == 2 ? len : len / 2);
    return p == 2 ? 0 : KFA_HAL_E_IO;
}

int kfa_hal_flash_write(uint32_t offset, const void *buf, size_t len)
{
    const uint8_t *src = buf;
    size_t n;
    int p;

    if (!in_range(offset, len))
        return KFA_HAL_E_RANGE;
    p = power();
    if (p == 0)
        return KFA_HAL_E_IO;
    n = p == 2 ? len : len / 2;
    for (size_t i = 0; i < n; i++)
        f.mem[offset + i] &= src[i];
    return p == 2 ? 0 : KFA_HAL_E_IO;
}
