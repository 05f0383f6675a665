/* SPDX-License-Identifier: MIT */
/*
 * kpuctl model fetch, run as a real process: unknown names, the offline error (a URL on a
 * loopback port nobody listens on, so no traffic leaves the machine), the sha256 mismatch
 * (a file:// URL to wrong bytes: nothing written), a good download from a file:// URL of
 * the shared model (kmodel and manifest stored, second run finds it there), and the face
 * model's .kfpkg path: zips built here with the shared kmodel stored and deflated, a zip
 * whose member CRC is wrong, and a zip without the member.
 * The shared models come from $KPU_TEST_DATA; without them the data cases skip (and fail
 * when CI=true).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "manifest.h"

#define OUT_MAX (64u * 1024u)
#define VOC_SHA "33219de6ffa0b24b8c41a82d09888070c72be68356ca457f3b722d25fdff95ab"
#define FACE_SHA "e3c6669f96761e697de71f8f33116747025bc185c5238f7760e4bddc0be23a03"

static char tmp[64];
static char out[OUT_MAX], err[OUT_MAX];

static void setup(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/kpuctl-fetch-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
}

static void slurp(const char *path, char *buf)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    if (f) {
        n = fread(buf, 1, OUT_MAX - 1, f);
        fclose(f);
    }
    buf[n] = 0;
}

/* Run kpuctl with args (NULL-terminated); stdout and stderr land in out and err. */
static int run(const char *const *args)
{
    char po[128], pe[128];
    const char *argv[32];
    int n = 0, st;
    pid_t pid;

    snprintf(po, sizeof(po), "%s/stdout", tmp);
    snprintf(pe, sizeof(pe), "%s/stderr", tmp);
    argv[n++] = "kpuctl";
    for (; *args && n < 31; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int o = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0)
            _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        execv(KPUCTL_PATH, (char *const *)argv);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    slurp(po, out);
    slurp(pe, err);
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static int exists(const char *dir, const char *name)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static int dir_entries(const char *dir)
{
    char cmd[256], buf[32] = {0};
    FILE *f;
    snprintf(cmd, sizeof(cmd), "ls -A '%s' 2>/dev/null | wc -l", dir);
    f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
    pclose(f);
    return atoi(buf);
}

/* The shared model file's bytes, or NULL after skipping (failing when CI=true). */
static uint8_t *shared_model(const char *name, size_t *len, char *path, size_t pathlen)
{
    const char *d = getenv("KPU_TEST_DATA"), *ci = getenv("CI");
    FILE *f;
    uint8_t *p;
    long n;

    snprintf(path, pathlen, "%s/models/%s", d ? d : "", name);
    f = d && *d ? fopen(path, "rb") : NULL;
    if (!f) {
        if (ci && strcmp(ci, "true") == 0)
            ck_abort_msg("%s missing (KPU_TEST_DATA=%s) and CI=true", path, d ? d : "");
        fprintf(stderr, "skip: %s missing (set KPU_TEST_DATA)\n", path);
        return NULL;
    }
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_gt(n, 0);
    rewind(f);
    p = malloc((size_t)n);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static int same_file(const char *path, const uint8_t *p, size_t len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *q = malloc(len + 1);
    size_t n;
    int same;
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(q);
    n = fread(q, 1, len + 1, f);
    fclose(f);
    same = n == len && memcmp(p, q, len) == 0;
    free(q);
    return same;
}

START_TEST(unknown_name_is_usage_error)
{
    const char *a[] = {"model", "fetch", "resnet", "-o", tmp, NULL};
    const char *b[] = {"model", "fetch", NULL};
    ck_assert_int_eq(run(a), 1);
    ck_assert_ptr_nonnull(strstr(err, "no model called 'resnet'"));
    ck_assert_ptr_nonnull(strstr(err, "voc20"));
    ck_assert_int_eq(run(b), 1);
    ck_assert_ptr_nonnull(strstr(err, "yolo2_voc20_320x240"));
}
END_TEST

/* A loopback port with no listener: connecting fails at once, like a machine offline. */
static int closed_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

START_TEST(offline_is_a_clear_error)
{
    char url[128], d[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/yolo.kmodel", closed_port());
    snprintf(d, sizeof(d), "%s/models", tmp);
    const char *a[] = {"model", "fetch", "voc20", "-o", d, "--url", url, NULL};
    ck_assert_int_eq(run(a), 6);
    ck_assert_ptr_nonnull(strstr(err, "cannot download"));
    ck_assert_ptr_nonnull(strstr(err, "offline"));
    ck_assert_int_eq(dir_entries(d), 0);

    /* The face model sits in a .kfpkg upstream: the error says so. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/face.kfpkg#facedetect.kmodel", closed_port());
    const char *b[] = {"--json", "model", "fetch", "face", "-o", d, "--url", url, NULL};
    ck_assert_int_eq(run(b), 6);
    ck_assert_ptr_nonnull(strstr(err, ".kfpkg"));
    ck_assert_ptr_nonnull(strstr(err, "facedetect.kmodel"));
    ck_assert_ptr_nonnull(strstr(out, "\"code\":\"EOFFLINE\""));
}
END_TEST

START_TEST(sha256_mismatch_writes_nothing)
{
    char url[160], f[128], d[128];
    FILE *fp;
    snprintf(f, sizeof(f), "%s/wrong.kmodel", tmp);
    snprintf(d, sizeof(d), "%s/models", tmp);
    fp = fopen(f, "wb");
    ck_assert_ptr_nonnull(fp);
    fputs("these are not the bytes the manifest pins", fp);
    fclose(fp);
    snprintf(url, sizeof(url), "file://%s", f);
    const char *a[] = {"model", "fetch", "voc20", "-o", d, "--url", url, NULL};
    ck_assert_int_eq(run(a), 6);
    ck_assert_ptr_nonnull(strstr(err, "sha256 mismatch"));
    ck_assert_ptr_nonnull(strstr(err, VOC_SHA));
    ck_assert(!exists(d, "yolo2_voc20_320x240.kmodel"));
    ck_assert(!exists(d, "yolo2_voc20_320x240.ini"));
}
END_TEST

START_TEST(file_url_stores_model_and_manifest)
{
    char path[512], url[600], d[128], p[256];
    struct kfa_manifest *m = malloc(sizeof(*m));
    size_t len;
    uint8_t *data = shared_model("yolo2_voc20_320x240.kmodel", &len, path, sizeof(path));
    ck_assert_ptr_nonnull(m);
    if (!data) {
        free(m);
        return;
    }
    snprintf(url, sizeof(url), "file://%s", path);
    snprintf(d, sizeof(d), "%s/a/b", tmp);
    const char *a[] = {"--json", "model", "fetch", "voc20", "-o", d, "--url", url, NULL};
    ck_assert_int_eq(run(a), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"sha256\":\"" VOC_SHA "\""));
    ck_assert_ptr_nonnull(strstr(out, "\"downloaded\":true"));
    snprintf(p, sizeof(p), "%s/yolo2_voc20_320x240.kmodel", d);
    ck_assert(same_file(p, data, len));
    snprintf(p, sizeof(p), "%s/yolo2_voc20_320x240.ini", d);
    ck_assert_int_eq(kfa_manifest_load(p, m, NULL), 0);
    ck_assert_str_eq(m->sha256, VOC_SHA);
    ck_assert_uint_eq(m->class_count, 20);
    ck_assert_int_eq(dir_entries(d), 2); /* no temporary files left */

    /* Again: found in place and checked, not downloaded (the URL now points nowhere). */
    const char *b[] = {"--json", "model", "fetch", "voc20", "-o", d, "--url", "file:///nonexistent",
                       NULL};
    ck_assert_int_eq(run(b), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"downloaded\":false"));
    /* --force downloads again, and fails here. */
    const char *c[] = {"model",   "fetch", "voc20", "-o", d, "--url", "file:///nonexistent",
                       "--force", NULL};
    ck_assert_int_eq(run(c), 6);
    snprintf(p, sizeof(p), "%s/yolo2_voc20_320x240.kmodel", d);
    ck_assert(same_file(p, data, len)); /* the stored file is untouched */
    free(data);
    free(m);
}
END_TEST

static void put16(FILE *f, unsigned v)
{
    fputc(v & 0xff, f);
    fputc(v >> 8 & 0xff, f);
}

static void put32(FILE *f, uint32_t v)
{
    put16(f, v & 0xffff);
    put16(f, v >> 16);
}

/*
 * Write a zip (PKWARE APPNOTE 4.3) holding flash-list.json and member, like a MaixPy
 * kfpkg. method 0 stores, 8 deflates; crc_xor spoils the member's CRC.
 */
static void write_zip(const char *path, const char *member, const uint8_t *p, size_t len,
                      unsigned method, uint32_t crc_xor)
{
    static const char json[] = "{\"version\":\"0.1.0\",\"files\":[]}";
    const char *names[2] = {"flash-list.json", member};
    const uint8_t *raw[2] = {(const uint8_t *)json, p};
    size_t rawlen[2] = {sizeof(json) - 1, len};
    uint8_t *comp[2];
    size_t clen[2];
    unsigned meth[2] = {0, method};
    uint32_t crc[2], off[2], cd;
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);

    for (int i = 0; i < 2; i++) {
        crc[i] = (uint32_t)crc32(0L, raw[i], (uInt)rawlen[i]) ^ (i == 1 ? crc_xor : 0);
        if (meth[i] == 8) {
            z_stream s = {0};
            comp[i] = malloc(rawlen[i] + 1024);
            ck_assert_int_eq(deflateInit2(&s, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                             Z_OK);
            s.next_in = (Bytef *)raw[i];
            s.avail_in = (uInt)rawlen[i];
            s.next_out = comp[i];
            s.avail_out = (uInt)rawlen[i] + 1024;
            ck_assert_int_eq(deflate(&s, Z_FINISH), Z_STREAM_END);
            clen[i] = s.total_out;
            deflateEnd(&s);
        } else {
            comp[i] = malloc(rawlen[i] + 1);
            memcpy(comp[i], raw[i], rawlen[i]);
            clen[i] = rawlen[i];
        }
    }
    for (int i = 0; i < 2; i++) {
        off[i] = (uint32_t)ftell(f);
        put32(f, 0x04034b50);
        put16(f, 20), put16(f, 0), put16(f, meth[i]), put16(f, 0), put16(f, 0);
        put32(f, crc[i]), put32(f, (uint32_t)clen[i]), put32(f, (uint32_t)rawlen[i]);
        put16(f, (unsigned)strlen(names[i])), put16(f, 0);
        fputs(names[i], f);
        fwrite(comp[i], 1, clen[i], f);
    }
    cd = (uint32_t)ftell(f);
    for (int i = 0; i < 2; i++) {
        put32(f, 0x02014b50);
        put16(f, 20), put16(f, 20), put16(f, 0), put16(f, meth[i]), put16(f, 0), put16(f, 0);
        put32(f, crc[i]), put32(f, (uint32_t)clen[i]), put32(f, (uint32_t)rawlen[i]);
        put16(f, (unsigned)strlen(names[i])), put16(f, 0), put16(f, 0), put16(f, 0), put16(f, 0);
        put32(f, 0), put32(f, off[i]);
        fputs(names[i], f);
        free(comp[i]);
    }
    {
        uint32_t cdlen = (uint32_t)ftell(f) - cd;
        put32(f, 0x06054b50);
        put16(f, 0), put16(f, 0), put16(f, 2), put16(f, 2);
        put32(f, cdlen), put32(f, cd), put16(f, 0);
    }
    fclose(f);
}

START_TEST(kfpkg_member_is_taken_out)
{
    static const unsigned methods[] = {0, 8};
    char path[512], zip[160], url[256], d[128], p[256];
    size_t len;
    uint8_t *data = shared_model("maixpy_facedetect_320x240.kmodel", &len, path, sizeof(path));
    if (!data)
        return;
    snprintf(zip, sizeof(zip), "%s/face.kfpkg", tmp);
    for (int i = 0; i < 2; i++) {
        snprintf(d, sizeof(d), "%s/m%d", tmp, i);
        write_zip(zip, "facedetect.kmodel", data, len, methods[i], 0);
        snprintf(url, sizeof(url), "file://%s#facedetect.kmodel", zip);
        const char *a[] = {"--json", "model", "fetch", "face", "-o", d, "--url", url, NULL};
        ck_assert_msg(run(a) == 0, "method %u: %s", methods[i], err);
        ck_assert_ptr_nonnull(strstr(out, FACE_SHA));
        snprintf(p, sizeof(p), "%s/maixpy_facedetect_320x240.kmodel", d);
        ck_assert(same_file(p, data, len));
        ck_assert(exists(d, "maixpy_facedetect_320x240.ini"));
    }

    /* A spoilt CRC, a missing member, and the member's name forgotten in the URL. */
    snprintf(d, sizeof(d), "%s/bad", tmp);
    write_zip(zip, "facedetect.kmodel", data, len, 8, 0x1);
    const char *a[] = {"model", "fetch", "face", "-o", d, "--url", url, NULL};
    ck_assert_int_eq(run(a), 6);
    ck_assert_ptr_nonnull(strstr(err, "CRC-32 mismatch"));
    write_zip(zip, "other.kmodel", data, len, 0, 0);
    ck_assert_int_eq(run(a), 6);
    ck_assert_ptr_nonnull(strstr(err, "no member facedetect.kmodel"));
    snprintf(url, sizeof(url), "file://%s", zip);
    ck_assert_int_eq(run(a), 6);
    ck_assert_ptr_nonnull(strstr(err, "sha256 mismatch"));
    ck_assert_int_eq(dir_entries(d), 0);
    free(data);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("model_fetch");
    TCase *t = tcase_create("fetch");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, unknown_name_is_usage_error);
    tcase_add_test(t, offline_is_a_clear_error);
    tcase_add_test(t, sha256_mismatch_writes_nothing);
    tcase_add_test(t, file_url_stores_model_and_manifest);
    tcase_add_test(t, kfpkg_member_is_taken_out);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
