/* SPDX-License-Identifier: MIT */
/*
 * SHA-256 (firmware-agent/core/sha256.c): the FIPS 180-2 appendix B examples ("abc", the
 * 448-bit two-block message, one million 'a'), then messages of every length 0..300 and
 * random splits of the streaming calls, compared with OpenSSL's SHA256().
 */
#include <check.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

static void hex(const uint8_t d[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

START_TEST(fips_examples)
{
    static const struct {
        const char *msg;
        const char *digest;
    } v[] = {
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    };
    uint8_t d[32];
    char h[65];
    struct kfa_sha256 ctx;

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        kfa_sha256(v[i].msg, strlen(v[i].msg), d);
        hex(d, h);
        ck_assert_str_eq(h, v[i].digest);
    }
    kfa_sha256_init(&ctx);
    for (int i = 0; i < 1000; i++) {
        char a[1000];
        memset(a, 'a', sizeof(a));
        kfa_sha256_update(&ctx, a, sizeof(a));
    }
    kfa_sha256_final(&ctx, d);
    hex(d, h);
    ck_assert_str_eq(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

START_TEST(every_length_and_split_matches_openssl)
{
    uint8_t msg[300], want[32], got[32];
    unsigned seed = 1;

    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)rand_r(&seed);
    for (size_t len = 0; len <= sizeof(msg); len++) {
        struct kfa_sha256 ctx;
        size_t off = 0;

        SHA256(msg, len, want);
        kfa_sha256(msg, len, got);
        ck_assert_mem_eq(got, want, 32);
        kfa_sha256_init(&ctx);
        while (off < len) {
            size_t n = (size_t)rand_r(&seed) % 70u;
            if (n > len - off)
                n = len - off;
            kfa_sha256_update(&ctx, msg + off, n);
            off += n;
        }
        kfa_sha256_final(&ctx, got);
        ck_assert_msg(memcmp(got, want, 32) == 0, "split digest differs at length %zu", len);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sha256");
    TCase *t = tcase_create("sha256");
    SRunner *sr;
    int failed;

    tcase_add_test(t, fips_examples);
    tcase_add_test(t, every_length_and_split_matches_openssl);
    suite_add_tcase(s, t);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
