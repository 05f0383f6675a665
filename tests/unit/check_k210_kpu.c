/* SPDX-License-Identifier: MIT */
/*
 * KPU layer-argument relocation (hal/k210/k210_pure.c): the three table addresses land in
 * the upper halves of words 4 (bwsx_base_addr), 5 (para_start_addr) and 7 (active_addr)
 * (kmodel-facts.md §3.1), the lower halves and all other words keep the kmodel's bits,
 * int_en and ram_flag are set in word 0, send_data_out is cleared in word 11, and
 * addresses the 32-bit fields cannot hold, or misaligned ones, are refused.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "k210_pure.h"

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void make_arg(uint8_t arg[96], uint64_t in[12])
{
    uint64_t x = 0x0123456789abcdefull;

    for (int i = 0; i < 12; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull; /* Knuth MMIX LCG */
        in[i] = x;
        put64(arg + 8 * i, x);
    }
}

START_TEST(addresses_go_where_the_hardware_reads_them)
{
    uint8_t arg[96];
    uint64_t in[12], out[12];

    make_arg(arg, in);
    ck_assert_int_eq(kfa_k210_kpu_relocate(arg, 0x80100000u, 0x80200008u, 0x80300010u, out), 0);
    ck_assert_uint_eq(out[4] >> 32, 0x80200008u);
    ck_assert_uint_eq(out[5] >> 32, 0x80100000u);
    ck_assert_uint_eq(out[7] >> 32, 0x80300010u);
    ck_assert_uint_eq(out[4] & 0xFFFFFFFFu, in[4] & 0xFFFFFFFFu);
    ck_assert_uint_eq(out[5] & 0xFFFFFFFFu, in[5] & 0xFFFFFFFFu);
    ck_assert_uint_eq(out[7] & 0xFFFFFFFFu, in[7] & 0xFFFFFFFFu);
    ck_assert_uint_eq(out[0], in[0] | 3u);
    ck_assert_uint_eq(out[11], in[11] & ~1ull);
    for (int i = 1; i < 11; i++)
        if (i != 4 && i != 5 && i != 7)
            ck_assert_uint_eq(out[i], in[i]);
}
END_TEST

START_TEST(bad_addresses_are_refused)
{
    uint8_t arg[96];
    uint64_t in[12], out[12];

    make_arg(arg, in);
    memset(out, 0xA5, sizeof(out));
    ck_assert_int_eq(kfa_k210_kpu_relocate(arg, 0x100000000ull, 0x80000000u, 0x80000000u, out), -1);
    ck_assert_int_eq(kfa_k210_kpu_relocate(arg, 0x80000000u, 0x80000004u, 0x80000000u, out), -1);
    ck_assert_int_eq(kfa_k210_kpu_relocate(arg, 0x80000000u, 0x80000000u, 0, out), -1);
    ck_assert_int_eq(kfa_k210_kpu_relocate(NULL, 0x80000000u, 0x80000000u, 0x80000000u, out), -1);
    ck_assert_uint_eq(out[0], 0xA5A5A5A5A5A5A5A5ull);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("k210_kpu");
    TCase *tc = tcase_create("relocate");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, addresses_go_where_the_hardware_reads_them);
    tcase_add_test(tc, bad_addresses_are_refused);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
