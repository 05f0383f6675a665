/* SPDX-License-Identifier: MIT */
/*
 * K210 clock arithmetic (hal/k210/k210_pure.c): the PLL search must produce settings
 * inside the limits of the SDK's sysctl.c (nr, nf, no ranges, VCO window, reference
 * minimum) whose output is what the formula fout = fin / nr * nf / no gives and within
 * 1 % of the request; impossible requests fail; the register fields decode back.
 */
#include <check.h>
#include <stdlib.h>

#include "k210_pure.h"

#define IN0 26000000u

static void check_limits(uint32_t want, const struct kfa_k210_pll *p)
{
    uint64_t vco = (uint64_t)IN0 * p->nf / p->nr;
    uint64_t f = vco / p->no;

    ck_assert_uint_ge(p->nr, 1);
    ck_assert_uint_le(p->nr, 16);
    ck_assert_uint_ge(p->nf, 1);
    ck_assert_uint_le(p->nf, 64);
    ck_assert_uint_ge(p->no, 1);
    ck_assert_uint_le(p->no, 16);
    ck_assert_uint_ge(vco, 350000000ull);
    ck_assert_uint_le(vco, 1750000000ull);
    ck_assert_uint_ge(IN0 / p->nr, 13671900u);
    ck_assert_uint_eq(p->fout, f);
    ck_assert_uint_le(f > want ? f - want : want - f, want / 100u);
}

START_TEST(pll0_for_400mhz_cpu)
{
    struct kfa_k210_pll p;

    ck_assert_int_eq(kfa_k210_pll_solve(IN0, 800000000u, &p), 0);
    check_limits(800000000u, &p);
    /* CPU = PLL0 / 2 with aclk_divider_sel 0: the documented ~400 MHz. */
    ck_assert_uint_ge(kfa_k210_cpu_hz(p.fout, 0), 396000000u);
    ck_assert_uint_le(kfa_k210_cpu_hz(p.fout, 0), 404000000u);
    ck_assert_uint_eq(kfa_k210_cpu_hz(800000000u, 1), 200000000u);
    ck_assert_uint_eq(kfa_k210_cpu_hz(800000000u, 3), 50000000u);
    ck_assert_uint_eq(kfa_k210_mtime_hz(400000000u), 8000000u);
}
END_TEST

/* 1 if any legal setting comes within 1 % of want (plain search over every setting). */
static int reachable(uint32_t want)
{
    for (uint32_t nr = 1; nr <= 16; nr++)
        for (uint32_t nf = 1; nf <= 64; nf++)
            for (uint32_t no = 1; no <= 16; no++) {
                uint64_t vco = (uint64_t)IN0 * nf / nr, f = vco / no;

                if (IN0 / nr >= 13671900u && vco >= 350000000ull && vco <= 1750000000ull &&
                    (f > want ? f - want : want - f) * 100u <= want)
                    return 1;
            }
    return 0;
}

START_TEST(many_requests_meet_the_limits)
{
    struct kfa_k210_pll p;
    int solved = 0;

    for (uint32_t want = 20000000u; want <= 1800000000u; want += 3000000u) {
        int r = kfa_k210_pll_solve(IN0, want, &p);

        ck_assert_int_eq(r == 0, reachable(want));
        if (r == 0) {
            check_limits(want, &p);
            solved++;
        }
    }
    ck_assert_int_gt(solved, 400);
}
END_TEST

START_TEST(impossible_requests_fail)
{
    struct kfa_k210_pll p;

    ck_assert_int_eq(kfa_k210_pll_solve(IN0, 0, &p), -1);
    ck_assert_int_eq(kfa_k210_pll_solve(0, 400000000u, &p), -1);
    ck_assert_int_eq(kfa_k210_pll_solve(IN0, 4000000000u, &p), -1); /* > VCO max */
    ck_assert_int_eq(kfa_k210_pll_solve(IN0, 1000000u, &p), -1);    /* < VCO min / 16 */
}
END_TEST

START_TEST(register_fields)
{
    struct kfa_k210_pll p = {.nr = 2, .nf = 40, .no = 3, .fout = 0};
    uint32_t w = kfa_k210_pll_fields(&p);

    ck_assert_uint_eq(w & 0xFu, 1u);           /* clkr 3:0 */
    ck_assert_uint_eq((w >> 4) & 0x3Fu, 39u);  /* clkf 9:4 */
    ck_assert_uint_eq((w >> 10) & 0xFu, 2u);   /* clkod 13:10 */
    ck_assert_uint_eq((w >> 14) & 0x3Fu, 39u); /* bwadj 19:14 = nf - 1 */
    ck_assert_uint_eq(w >> 20, 0u);            /* control bits untouched */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("k210_clock");
    TCase *tc = tcase_create("pll");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, pll0_for_400mhz_cpu);
    tcase_add_test(tc, many_requests_meet_the_limits);
    tcase_add_test(tc, impossible_requests_fail);
    tcase_add_test(tc, register_fields);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
