/* SPDX-License-Identifier: MIT */
/*
 * The UART receive ring (hal/rv64/ring.c): FIFO order, full and empty, counted drops,
 * partial reads, and correct behaviour when the free-running counters wrap at 2^32.
 */
#include <check.h>
#include <stdlib.h>

#include "ring.h"

START_TEST(fifo_full_and_drops)
{
    struct kfa_ring r;
    uint8_t st[8], out[16];

    ck_assert_int_eq(kfa_ring_init(&r, st, 6), -1);
    ck_assert_int_eq(kfa_ring_init(&r, st, 1), -1);
    ck_assert_int_eq(kfa_ring_init(&r, st, 8), 0);
    ck_assert_uint_eq(kfa_ring_count(&r), 0);
    ck_assert_uint_eq(kfa_ring_get(&r, out, sizeof(out)), 0);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(kfa_ring_put(&r, (uint8_t)(10 + i)), 0);
    ck_assert_uint_eq(kfa_ring_space(&r), 0);
    ck_assert_int_eq(kfa_ring_put(&r, 99), -1);
    ck_assert_uint_eq(r.dropped, 1);
    ck_assert_uint_eq(kfa_ring_get(&r, out, 3), 3);
    ck_assert_uint_eq(out[0], 10);
    ck_assert_uint_eq(out[2], 12);
    ck_assert_uint_eq(kfa_ring_get(&r, out, sizeof(out)), 5);
    ck_assert_uint_eq(out[4], 17);
    ck_assert_uint_eq(kfa_ring_count(&r), 0);
}
END_TEST

START_TEST(counters_wrap)
{
    struct kfa_ring r;
    uint8_t st[16], out[16];
    uint8_t next_in = 0, next_out = 0;

    ck_assert_int_eq(kfa_ring_init(&r, st, 16), 0);
    r.head = r.tail = 0xFFFFFFF5u;
    for (int round = 0; round < 40; round++) {
        size_t n;

        for (int i = 0; i < 11; i++)
            ck_assert_int_eq(kfa_ring_put(&r, next_in++), 0);
        n = kfa_ring_get(&r, out, 11);
        ck_assert_uint_eq(n, 11);
        for (size_t i = 0; i < n; i++)
            ck_assert_uint_eq(out[i], next_out++);
    }
    ck_assert_uint_eq(r.dropped, 0);
    ck_assert_uint_lt(r.head, 0xFFFFFFF5u); /* it did wrap */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("k210_ring");
    TCase *tc = tcase_create("ring");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, fifo_full_and_drops);
    tcase_add_test(tc, counters_wrap);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
