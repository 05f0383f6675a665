/* SPDX-License-Identifier: MIT */
/*
 * SiFive UART divisor arithmetic (hal/rv64/sifive_uart.c), shared by the K210's UARTHS
 * and QEMU: baud = clk / (div + 1), the closest divisor, and refusal of rates the clock
 * cannot make within 2.5 %.
 */
#include <check.h>
#include <stdlib.h>

#include "sifive_uart.h"

static uint32_t err_permille(uint32_t got, uint32_t want)
{
    uint32_t d = got > want ? got - want : want - got;

    return (uint32_t)((uint64_t)d * 1000u / want);
}

START_TEST(common_rates_at_400mhz)
{
    static const uint32_t rates[] = {115200, 230400, 460800, 921600, 1500000, 2000000};
    uint32_t div;

    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        ck_assert_int_eq(kfa_sifive_uart_div(400000000u, rates[i], &div), 0);
        ck_assert_uint_le(err_permille(kfa_sifive_uart_rate(400000000u, div), rates[i]), 25);
        /* No neighbour is closer. */
        ck_assert_uint_le(err_permille(kfa_sifive_uart_rate(400000000u, div), rates[i]),
                          err_permille(kfa_sifive_uart_rate(400000000u, div + 1), rates[i]));
        ck_assert_uint_le(err_permille(kfa_sifive_uart_rate(400000000u, div), rates[i]),
                          err_permille(kfa_sifive_uart_rate(400000000u, div - 1), rates[i]));
    }
    ck_assert_int_eq(kfa_sifive_uart_div(400000000u, 115200u, &div), 0);
    ck_assert_uint_eq(div, 3471u); /* 400e6 / 115200 = 3472.2 -> 3472 - 1 */
    ck_assert_int_eq(kfa_sifive_uart_div(26000000u, 2000000u, &div), 0);
    ck_assert_uint_eq(div, 12u); /* 26 MHz / 13 = exactly 2 Mbaud */
}
END_TEST

START_TEST(rates_out_of_reach)
{
    uint32_t div = 77;

    ck_assert_int_eq(kfa_sifive_uart_div(400000000u, 0, &div), -1);
    ck_assert_int_eq(kfa_sifive_uart_div(0, 115200u, &div), -1);
    ck_assert_int_eq(kfa_sifive_uart_div(1000000u, 2000000u, &div), -1);
    ck_assert_int_eq(kfa_sifive_uart_div(1000000u, 115200u, &div), -1); /* 111111: 3.5 % off */
    ck_assert_int_eq(kfa_sifive_uart_div(400000000u, 300u, &div), -1);  /* div > 16 bits */
    ck_assert_uint_eq(div, 77u);                                        /* untouched on failure */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("k210_uart");
    TCase *tc = tcase_create("div");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, common_rates_at_400mhz);
    tcase_add_test(tc, rates_out_of_reach);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
