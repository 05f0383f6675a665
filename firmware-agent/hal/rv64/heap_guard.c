/* SPDX-License-Identifier: MIT */
/*
 * No heap after init: the images link with -Wl,--wrap=malloc,--wrap=calloc,
 * --wrap=realloc,--wrap=free, so every call of the portable code (and of picolibc) goes
 * through here. Before kfa_rv64_heap_seal() requests go to picolibc's allocator (its arena
 * is the linker script's __heap_start..__heap_end, deliberately small); afterwards they
 * fail and are counted. The size report (size_report.sh) also lists whether malloc is in
 * the image at all.
 */
#include <stddef.h>
#include <stdint.h>

#include "rv64.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static int sealed;
static uint32_t refused;

void kfa_rv64_heap_seal(void)
{
    sealed = 1;
}

uint32_t kfa_rv64_heap_refused(void)
{
    return refused;
}

void *__wrap_malloc(size_t n)
{
    if (sealed) {
        refused++;
        return NULL;
    }
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (sealed) {
        refused++;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (sealed) {
        refused++;
        return NULL;
    }
    return __real_realloc(p, n);
}

void __wrap_free(void *p)
{
    __real_free(p);
}
