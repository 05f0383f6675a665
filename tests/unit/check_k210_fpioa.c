/* SPDX-License-Identifier: MIT */
/*
 * K210 board profiles and FPIOA words (hal/k210/k210_pure.c): every supported board has
 * UARTHS on the boot ROM's IO4 (RX) / IO5 (TX) and the camera pins, no IO twice, and the
 * configuration word of each function has the fpioa_io_config_t bits its direction needs
 * (SDK fpioa.h: ch_sel 7:0, ds 11:8, oe_en 12, pu 16, ie_en 20, st 23).
 */
#include <check.h>
#include <stdlib.h>

#include "k210_pure.h"
#include "k210_regs.h"

#define OE (1u << 12)
#define PU (1u << 16)
#define IE (1u << 20)
#define ST (1u << 23)

START_TEST(every_board_is_there)
{
    for (uint32_t b = 3; b <= 7; b++) /* kpu.link.v1.Board MAIX_DOCK .. MAIX_AMIGO */
        ck_assert_ptr_nonnull(kfa_k210_board_find(b));
    ck_assert_ptr_null(kfa_k210_board_find(0));
    ck_assert_ptr_null(kfa_k210_board_find(2)); /* QEMU is not a K210 board */
    ck_assert_ptr_null(kfa_k210_board_at(kfa_k210_board_count()));
}
END_TEST

START_TEST(pins_are_sane)
{
    for (size_t i = 0; i < kfa_k210_board_count(); i++) {
        const struct kfa_k210_board *b = kfa_k210_board_at(i);
        int used[FPIOA_PINS] = {0}, rx = -1, tx = -1, sda = -1;

        ck_assert_uint_le(b->npins, KFA_K210_BOARD_PINS);
        for (size_t p = 0; p < b->npins; p++) {
            ck_assert_uint_lt(b->pins[p].io, FPIOA_PINS);
            ck_assert_msg(!used[b->pins[p].io], "%s: IO%u twice", b->name, b->pins[p].io);
            used[b->pins[p].io] = 1;
            if (b->pins[p].func == FUNC_UARTHS_RX)
                rx = b->pins[p].io;
            if (b->pins[p].func == FUNC_UARTHS_TX)
                tx = b->pins[p].io;
            if (b->pins[p].func == FUNC_SCCB_SDA)
                sda = b->pins[p].io;
        }
        ck_assert_int_eq(rx, 4);
        ck_assert_int_eq(tx, 5);
        ck_assert_int_ge(sda, 0);
    }
}
END_TEST

START_TEST(config_words)
{
    uint32_t tx = kfa_k210_fpioa_word(FUNC_UARTHS_TX), rx = kfa_k210_fpioa_word(FUNC_UARTHS_RX);
    uint32_t sda = kfa_k210_fpioa_word(FUNC_SCCB_SDA), pclk = kfa_k210_fpioa_word(FUNC_CMOS_PCLK);

    ck_assert_uint_eq(tx & 0xFFu, FUNC_UARTHS_TX);
    ck_assert_uint_eq(rx & 0xFFu, FUNC_UARTHS_RX);
    ck_assert(tx & OE);
    ck_assert(!(tx & IE));
    ck_assert_uint_eq((tx >> 8) & 0xFu, 0xFu);
    ck_assert(rx & IE);
    ck_assert(rx & ST);
    ck_assert(!(rx & OE));
    ck_assert(sda & OE);
    ck_assert(sda & IE);
    ck_assert(sda & PU);
    ck_assert(pclk & IE);
    ck_assert(!(pclk & OE));
    ck_assert_uint_eq(kfa_k210_fpioa_word(FUNC_CMOS_XCLK) & OE, OE);
    ck_assert_uint_eq(kfa_k210_fpioa_word(256), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("k210_fpioa");
    TCase *tc = tcase_create("boards");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, every_board_is_there);
    tcase_add_test(tc, pins_are_sane);
    tcase_add_test(tc, config_words);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
