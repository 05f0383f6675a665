/* SPDX-License-Identifier: MIT */
/*
 * The agent's flash layout on the K210 (hal/k210/k210_pure.c): the boot image slot at 0
 * holds the image with kflash's 5-byte header and 32-byte SHA-256, the model store of
 * core/store.h starts at its reserve, and impossible layouts are refused.
 */
#include <check.h>
#include <stdlib.h>

#include "core/store.h"
#include "k210_pure.h"

#define MIB (1024u * 1024u)

START_TEST(layout_of_a_16mib_flash)
{
    struct kfa_k210_flash_plan p;

    ck_assert_int_eq(kfa_k210_flash_plan(16 * MIB, KFA_STORE_IMAGE_RESERVE, 61024, &p), 0);
    ck_assert_uint_eq(p.image_off, 0);
    ck_assert_uint_eq(p.image_max, KFA_STORE_IMAGE_RESERVE);
    ck_assert_uint_eq(p.store_off, KFA_STORE_IMAGE_RESERVE);
    ck_assert_uint_eq(p.store_off + p.store_len, 16 * MIB);
    ck_assert_uint_le(p.store_off, KFA_STORE_DIR_A); /* the store's own layout starts there */
    /* The largest image that still fits, and one byte more. */
    ck_assert_int_eq(kfa_k210_flash_plan(16 * MIB, MIB, MIB - 37u, &p), 0);
    ck_assert_int_eq(kfa_k210_flash_plan(16 * MIB, MIB, MIB - 36u, &p), -1);
}
END_TEST

START_TEST(bad_layouts)
{
    struct kfa_k210_flash_plan p;

    ck_assert_int_eq(kfa_k210_flash_plan(MIB, MIB, 1000, &p), -1);     /* no room for a store */
    ck_assert_int_eq(kfa_k210_flash_plan(16 * MIB, 1000, 10, &p), -1); /* not sector-aligned */
    ck_assert_int_eq(kfa_k210_flash_plan(16 * MIB, 0, 10, &p), -1);
    ck_assert_int_eq(kfa_k210_flash_plan(16 * MIB, MIB, 10, NULL), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("k210_flash");
    TCase *tc = tcase_create("layout");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, layout_of_a_16mib_flash);
    tcase_add_test(tc, bad_layouts);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
