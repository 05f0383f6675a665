/* SPDX-License-Identifier: MIT */
/*
 * kpud's configuration (daemon/config.c): the [usb] give_back_after key and the duration
 * parser behind it and behind kpud --usb-give-back-after. Files are written to a fresh
 * temporary directory and read back through kpud_config_load().
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char dir[64];
static char path[128];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kpud-check-config-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/kpud.conf", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

/* Write text as the config file and load it over the defaults. */
static int load(const char *text, struct kpud_config *cfg, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    kpud_config_defaults(cfg);
    err[0] = 0;
    return kpud_config_load(cfg, path, err, errlen);
}

START_TEST(test_give_back_default)
{
    static struct kpud_config cfg;

    kpud_config_defaults(&cfg);
    ck_assert_uint_eq(cfg.usb_give_back_ms, 30000); /* docs/kpud.md: 30s */
    ck_assert_int_eq(cfg.usb_interface, -1);        /* auto: every port of a bridge */
}
END_TEST

static const struct {
    const char *value;
    uint32_t ms;
} good[] = {
    {"30s", 30000},  {"45", 45000}, {"500ms", 500},    {"2m", 120000},
    {"1h", 3600000}, {"0", 0},      {"24h", 86400000},
};

START_TEST(test_give_back_values)
{
    static struct kpud_config cfg;
    char text[128], err[320];

    snprintf(text, sizeof(text), "[usb]\ngive_back_after = %s\n", good[_i].value);
    ck_assert_int_eq(load(text, &cfg, err, sizeof(err)), 0);
    ck_assert_uint_eq(cfg.usb_give_back_ms, good[_i].ms);
}
END_TEST

static const char *const bad[] = {
    "-5s", "abc", "30x", "1.5s", "30 s", "s", "ms", "30sec", "+3s", "25h", "99999999999999999999s",
};

START_TEST(test_give_back_refused)
{
    static struct kpud_config cfg;
    char text[128], err[320];

    snprintf(text, sizeof(text), "[usb]\nbaud = 115200\ngive_back_after = %s\n", bad[_i]);
    ck_assert_int_eq(load(text, &cfg, err, sizeof(err)), -EINVAL);
    /* The message names the file, the line, the key and the value. */
    ck_assert_msg(strstr(err, path) != NULL, "no file in '%s'", err);
    ck_assert_msg(strstr(err, ":3:") != NULL, "no line in '%s'", err);
    ck_assert_msg(strstr(err, "[usb] give_back_after") != NULL, "no key in '%s'", err);
    ck_assert_msg(strstr(err, bad[_i]) != NULL, "no value in '%s'", err);
    ck_assert_msg(strstr(err, "0 = never") != NULL, "no hint in '%s'", err);
}
END_TEST

START_TEST(test_give_back_empty_refused)
{
    static struct kpud_config cfg;
    char err[320];

    ck_assert_int_eq(load("[usb]\ngive_back_after =\n", &cfg, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "give_back_after") != NULL, "'%s'", err);
}
END_TEST

/* [usb] isp_baud: 0 (default, stay at 115200) or 9600..3000000; anything else refused. */
START_TEST(test_isp_baud)
{
    static const char *const refused[] = {"100", "3000001", "1.5M", "-1", "x"};
    struct kpud_config cfg;
    char err[256], text[128];

    ck_assert_int_eq(load("[usb]\nbaud = 115200\n", &cfg, err, sizeof(err)), 0);
    ck_assert_uint_eq(cfg.usb_isp_baud, 0);
    ck_assert_int_eq(load("[usb]\nisp_baud = 1500000\n", &cfg, err, sizeof(err)), 0);
    ck_assert_uint_eq(cfg.usb_isp_baud, 1500000);
    ck_assert_int_eq(load("[usb]\nisp_baud = 0\n", &cfg, err, sizeof(err)), 0);
    ck_assert_uint_eq(cfg.usb_isp_baud, 0);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        snprintf(text, sizeof(text), "[usb]\nisp_baud = %s\n", refused[i]);
        ck_assert_int_eq(load(text, &cfg, err, sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, "isp_baud") != NULL, "'%s' for %s", err, refused[i]);
    }
}
END_TEST

START_TEST(test_parse_duration_ms)
{
    uint32_t ms = 7;

    ck_assert_int_eq(kpud_parse_duration_ms("250ms", 1000, &ms), 0);
    ck_assert_uint_eq(ms, 250);
    ck_assert_int_eq(kpud_parse_duration_ms("1s", 1000, &ms), 0);
    ck_assert_uint_eq(ms, 1000);
    ms = 7;
    ck_assert_int_eq(kpud_parse_duration_ms("1001ms", 1000, &ms), -ERANGE);
    ck_assert_int_eq(kpud_parse_duration_ms("2s", 1000, &ms), -ERANGE);
    ck_assert_int_eq(kpud_parse_duration_ms("", 1000, &ms), -EINVAL);
    ck_assert_int_eq(kpud_parse_duration_ms(" 1s", 1000, &ms), -EINVAL);
    ck_assert_int_eq(kpud_parse_duration_ms("1d", 1000000000u, &ms), -EINVAL);
    ck_assert_uint_eq(ms, 7); /* untouched on failure */
    /* 2^32 ms would wrap a uint32_t: refused, not truncated. */
    ck_assert_int_eq(kpud_parse_duration_ms("4294968s", UINT32_MAX, &ms), -ERANGE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("usb");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_give_back_default);
    tcase_add_loop_test(tc, test_give_back_values, 0, (int)(sizeof(good) / sizeof(good[0])));
    tcase_add_loop_test(tc, test_give_back_refused, 0, (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(tc, test_give_back_empty_refused);
    tcase_add_test(tc, test_parse_duration_ms);
    tcase_add_test(tc, test_isp_baud);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
