/* SPDX-License-Identifier: MIT */
/*
 * Security of the real kpud (issue 9), started as root the way a system service starts:
 *   - the socket's mode is 0660, its owner kpud's user and its group the reader group;
 *   - a user in the reader group is a reader: it may watch, list and query, and every
 *     request that configures, records, resets, uploads, deletes or changes retention is
 *     refused; a user in no kpud group cannot even connect; the admin group may configure;
 *   - capture names from clients (RecordStart) cannot leave <state_dir>/captures;
 *   - a model name announced by a board cannot make kpud read a manifest outside its
 *     model folders (the board is a replayed capture whose AgentHello names "../evil");
 *   - once running, kpud has no capabilities left and cannot gain any (no_new_privs).
 * Users are switched in forked children (setgroups/setgid/setuid), so the test needs root:
 * without it, it skips with a message (and fails under CI=true).
 */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kcap.h"
#include "klink.h"
#include "kpu/link/v1/link.pb-c.h"
#include "rel_util.h"

#define NOBODY 65534u
#define CONFIG "[ipc]\nreader_group = users\nadmin_group = adm\n"

static pid_t kpud;
static gid_t reader_gid, admin_gid;

static int need_root(void)
{
    const char *ci = getenv("CI");
    struct group *g = getgrnam("users");

    reader_gid = g ? g->gr_gid : (gid_t)-1; /* getgrnam's storage is reused by the next call */
    g = getgrnam("adm");
    admin_gid = g ? g->gr_gid : (gid_t)-1;
    if (geteuid() == 0 && reader_gid != (gid_t)-1 && admin_gid != (gid_t)-1)
        return 1;
    ck_assert_msg(!(ci && !strcmp(ci, "true")),
                  "security tests need root and the groups 'users' and 'adm' (CI=true)");
    printf("SKIP: security tests need root and the groups 'users' and 'adm'\n");
    return 0;
}

static void start(void)
{
    /* Other users must reach the socket: the test folder is 0700 from mkdtemp. */
    ck_assert_int_eq(chmod(h_tmpdir(), 0755), 0);
    kpud = rel_start_kpud("normal.kcap", rel_write_config("kpud.conf", CONFIG), NULL);
}

static void teardown(void)
{
    if (kpud > 0)
        h_stop(kpud, 20000);
    kpud = 0;
    h_cleanup();
}

START_TEST(socket_mode_and_owner)
{
    struct stat st;

    if (!need_root())
        return;
    start();
    ck_assert_int_eq(stat(rel_socket_path(), &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 07777, 0660);
    ck_assert_uint_eq(st.st_uid, geteuid());
    ck_assert_uint_eq(st.st_gid, reader_gid);
}
END_TEST

/* In a child: become nobody with the given groups; run fn; exit with its failure count. */
static int as_user(const gid_t *groups, size_t n, int (*fn)(void))
{
    pid_t pid = fork();
    int st;

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (setgroups(n, groups) < 0 || setgid(n ? groups[0] : NOBODY) < 0 || setuid(NOBODY) < 0)
            _exit(100);
        _exit(fn());
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

#define EXPECT(cond, what)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "as uid %u: %s\n", (unsigned)getuid(), what);                          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static kpu_client_t *open_as_me(int *err)
{
    struct kpu_client_opts o = {.socket_path = rel_socket_path(), .timeout_ms = 10000};
    kpu_client_t *c = NULL;

    *err = kpu_client_open(&o, &c);
    return c;
}

static int reader_checks(void)
{
    int failures = 0, err;
    kpu_client_t *c = open_as_me(&err);
    struct kpu_client_device *devs = NULL;
    struct kpu_client_stats stats;
    struct kpu_client_config cfg = {0};
    struct kpu_client_retention ret = {.max_age_s = 1};
    size_t n = 0;
    const char *dev;

    if (!c) {
        fprintf(stderr, "reader cannot connect: %s (%s)\n", kpu_client_strerror(err),
                kpu_client_open_error_text());
        return 1;
    }
    EXPECT(kpu_client_server_info(c)->role == KPU_CLIENT_ROLE_READER, "role is not reader");
    EXPECT(kpu_client_list_devices(c, &devs, &n) == 0 && n == 1, "reader cannot list devices");
    EXPECT(kpu_client_get_stats(c, &stats) == 0, "reader cannot read stats");
    dev = n ? devs[0].id : "";
    cfg.device = dev;
    cfg.threshold = 0.9f;
    EXPECT(kpu_client_config_set(c, &cfg, KPU_CLIENT_CFG_THRESHOLD, 0, NULL) == KPU_CLIENT_EACCES,
           "reader could configure");
    EXPECT(kpu_client_retention_set(c, &ret, NULL) == KPU_CLIENT_EACCES,
           "reader could set retention");
    EXPECT(kpu_client_retention_apply(c, 0, NULL) == KPU_CLIENT_EACCES,
           "reader could apply retention");
    EXPECT(kpu_client_delete_history(c, NULL, 0, 0, 0, NULL) == KPU_CLIENT_EACCES,
           "reader could delete history");
    EXPECT(kpu_client_record_start(c, dev, "r.kcap", NULL, NULL) == KPU_CLIENT_EACCES,
           "reader could record");
    EXPECT(kpu_client_reset(c, dev, 0) == KPU_CLIENT_EACCES, "reader could reset");
    EXPECT(kpu_client_model_upload(c, dev, "m", "x", 1, NULL, NULL, NULL) == KPU_CLIENT_EACCES,
           "reader could upload a model");
    EXPECT(kpu_client_model_delete(c, dev, "m") == KPU_CLIENT_EACCES,
           "reader could delete a model");
    EXPECT(kpu_client_model_select(c, dev, "m") == KPU_CLIENT_EACCES,
           "reader could select a model");
    kpu_client_free(devs);
    kpu_client_close(c);
    return failures;
}

static int stranger_checks(void)
{
    int failures = 0, err;
    kpu_client_t *c = open_as_me(&err);

    EXPECT(!c && err == KPU_CLIENT_EACCES, "a user in no kpud group could connect");
    kpu_client_close(c);
    return failures;
}

static int admin_checks(void)
{
    int failures = 0, err;
    kpu_client_t *c = open_as_me(&err);
    struct kpu_client_device *devs = NULL;
    struct kpu_client_config cfg = {0}, *out = NULL;
    size_t n = 0;

    if (!c)
        return 1;
    EXPECT(kpu_client_server_info(c)->role == KPU_CLIENT_ROLE_ADMIN, "role is not admin");
    EXPECT(kpu_client_list_devices(c, &devs, &n) == 0 && n == 1, "admin cannot list devices");
    cfg.device = n ? devs[0].id : "";
    cfg.threshold = 0.75f;
    EXPECT(kpu_client_config_set(c, &cfg, KPU_CLIENT_CFG_THRESHOLD, 0, &out) == 0 && out &&
               out->threshold == 0.75f,
           "admin could not configure");
    kpu_client_free(out);
    kpu_client_free(devs);
    kpu_client_close(c);
    return failures;
}

START_TEST(roles_from_groups)
{
    gid_t reader[1], admin[2], none[] = {NOBODY};

    if (!need_root())
        return;
    reader[0] = admin[0] = reader_gid;
    admin[1] = admin_gid;
    start();
    ck_assert_int_eq(as_user(reader, 1, reader_checks), 0);
    ck_assert_int_eq(as_user(none, 1, stranger_checks), 0);
    ck_assert_int_eq(as_user(admin, 2, admin_checks), 0);
}
END_TEST

START_TEST(capture_names_stay_in_their_folder)
{
    static const char *const bad[] = {
        "../escape.kcap", "/tmp/escape.kcap", ".hidden", "a/b.kcap", "", "x\ny", "..", NULL};
    kpu_client_t *c;
    struct kpu_client_device *devs = NULL;
    struct kpu_client_record_state *rs = NULL;
    char path[600];
    size_t n = 0;

    if (!need_root())
        return;
    start();
    c = rel_client();
    ck_assert_int_eq(kpu_client_list_devices(c, &devs, &n), 0);
    ck_assert_uint_eq(n, 1);
    for (int i = 0; bad[i]; i++) {
        int r = kpu_client_record_start(c, devs[0].id, bad[i], NULL, NULL);
        ck_assert_msg(r == KPU_CLIENT_EINVAL, "capture name '%s' accepted (%s)", bad[i],
                      kpu_client_strerror(r));
    }
    ck_assert_int_ne(access(h_path("escape.kcap"), F_OK), 0);
    ck_assert_int_ne(access(h_path("state/escape.kcap"), F_OK), 0);
    ck_assert_int_ne(access("/tmp/escape.kcap", F_OK), 0);
    ck_assert_int_eq(kpu_client_record_start(c, devs[0].id, "good-1.kcap", "n", &rs), 0);
    kpu_client_free(rs);
    ck_assert_int_eq(kpu_client_record_stop(c, devs[0].id, NULL), 0);
    snprintf(path, sizeof(path), "%s", h_path("state/captures/good-1.kcap"));
    ck_assert_int_eq(access(path, F_OK), 0);
    kpu_client_free(devs);
    kpu_client_close(c);
}
END_TEST

/* ---- a board whose AgentHello names a model outside the model folders ---------------- */

static void put_frame(FILE *f, uint64_t t_us, uint8_t type, uint16_t seq, uint16_t ref,
                      const ProtobufCMessage *m)
{
    uint8_t payload[KLINK_MAX_PAYLOAD], wire[KLINK_MAX_ENCODED];
    size_t n = protobuf_c_message_pack(m, payload);
    size_t w =
        klink_encode(type, ref ? KLINK_FLAG_RESPONSE : 0, seq, ref, payload, n, wire, sizeof(wire));

    ck_assert_uint_gt(w, 0);
    ck_assert_int_eq(kcap_write_record(f, KCAP_AGENT_TO_HOST, t_us, wire, w), 0);
}

/* A capture: AgentHello (answer to HostHello seq 0) announcing model `name`, Status OK to
 * Configure (seq 1) and StreamControl (seq 2), then frames with one box of class 0. */
static void write_capture(const char *path, const char *name)
{
    FILE *f = fopen(path, "wb");
    Kpu__Link__V1__AgentHello h = KPU__LINK__V1__AGENT_HELLO__INIT;
    Kpu__Link__V1__StoredModel mi = KPU__LINK__V1__STORED_MODEL__INIT, *mis[] = {&mi};
    Kpu__Link__V1__Status ok = KPU__LINK__V1__STATUS__INIT;
    uint8_t uid[16] = {0xe1, 0x11};

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(kcap_write_header(f, "board=test\nnotes=hostile model name\n"), 0);
    ck_assert_int_eq(kcap_write_record(f, KCAP_MARKER, 0, (const uint8_t *)"link up", 7), 0);
    h.protocol_major = 1;
    h.agent_version = "0.1.0";
    h.chip_uid.data = uid;
    h.chip_uid.len = sizeof(uid);
    mi.name = (char *)name;
    mi.selected = 1;
    h.n_models = 1;
    h.models = mis;
    put_frame(f, 1000, KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO, 0, 0, &h.base);
    ok.code = KPU__LINK__V1__STATUS_CODE__STATUS_OK;
    put_frame(f, 2000, KPU__LINK__V1__MSG_TYPE__MSG_STATUS, 1, 1, &ok.base);
    put_frame(f, 3000, KPU__LINK__V1__MSG_TYPE__MSG_STATUS, 2, 2, &ok.base);
    for (uint32_t i = 0; i < 20; i++) {
        Kpu__Link__V1__DetectionFrame df = KPU__LINK__V1__DETECTION_FRAME__INIT;
        Kpu__Link__V1__Box b = KPU__LINK__V1__BOX__INIT, *bs[] = {&b};
        df.frame_seq = i;
        df.image_width = 320;
        df.image_height = 240;
        b.score = 0.9f;
        b.w = b.h = 10;
        df.n_boxes = 1;
        df.boxes = bs;
        put_frame(f, 4000 + i * 1000, KPU__LINK__V1__MSG_TYPE__MSG_DETECTION_FRAME, 3 + i, 0,
                  &df.base);
    }
    ck_assert_int_eq(fclose(f), 0);
}

/* The shipped face manifest with its label renamed: a manifest kpud would use if asked. */
static void write_manifest(const char *rel, const char *name)
{
    char text[8192], out[8400], *p;
    FILE *f = fopen(KPU_TEST_MODELS_DIR "/maixpy_facedetect_320x240.ini", "r");
    size_t n;

    ck_assert_ptr_nonnull(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = 0;
    p = strstr(text, "labels = face");
    ck_assert_ptr_nonnull(p);
    *p = 0;
    snprintf(out, sizeof(out), "%slabels = EVIL%s", text, p + strlen("labels = face"));
    p = strstr(out, "name = maixpy_facedetect_320x240");
    ck_assert_ptr_nonnull(p);
    memcpy(p, "name = ", 7);
    memmove(p + 7 + strlen(name), p + strlen("name = maixpy_facedetect_320x240"),
            strlen(p + strlen("name = maixpy_facedetect_320x240")) + 1);
    memcpy(p + 7, name, strlen(name));
    rel_write_config(rel, out);
}

/* Play capture into state dir `state` until kpud stops at its end; count EVIL labels. */
static int64_t evil_labels_after(const char *state, const char *capture)
{
    char *argv[16], sql[] = "SELECT count(*) FROM detections WHERE label = 'EVIL'";
    char dbp[600];
    int n = 0, st;
    pid_t pid;
    uint64_t t0 = rel_now_ms();

    argv[n++] = (char *)h_kpud();
    argv[n++] = "--state-dir";
    argv[n++] = (char *)h_path(state);
    argv[n++] = "--socket";
    argv[n++] = (char *)rel_socket_path();
    argv[n++] = "--config";
    argv[n++] = "/dev/null";
    argv[n++] = "--replay";
    argv[n++] = (char *)h_path(capture);
    argv[n++] = "--replay-speed";
    argv[n++] = "0";
    argv[n++] = "--replay-exit";
    argv[n] = NULL;
    pid = h_spawn(argv, h_path("kpud.log"));
    while (h_alive(pid, &st)) {
        ck_assert_msg(rel_now_ms() - t0 < 30000, "kpud did not stop at the end of the capture");
        rel_pause_ms(20);
    }
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    snprintf(dbp, sizeof(dbp), "%s/kpud.db", h_path(state));
    ck_assert_int_eq(h_db_int(dbp, "SELECT count(*) FROM detections"), 20);
    return h_db_int(dbp, sql);
}

START_TEST(board_model_names_cannot_reach_other_manifests)
{
    if (!need_root())
        return;
    /* Control: a plain name finds <state>/models/evil.ini, so the labels do come from it. */
    ck_assert_int_eq(mkdir(h_path("ok"), 0750), 0);
    ck_assert_int_eq(mkdir(h_path("ok/models"), 0750), 0);
    write_manifest("ok/models/evil.ini", "evil");
    write_capture(h_path("plain.kcap"), "evil");
    ck_assert_int_eq(evil_labels_after("ok", "plain.kcap"), 20);
    /* Hostile: "../evil" would be <state>/models/../evil.ini = <state>/evil.ini. */
    ck_assert_int_eq(mkdir(h_path("state"), 0750), 0);
    ck_assert_int_eq(mkdir(h_path("state/models"), 0750), 0);
    write_manifest("state/evil.ini", "evil");
    write_capture(h_path("hostile.kcap"), "../evil");
    ck_assert_int_eq(evil_labels_after("state", "hostile.kcap"), 0);
}
END_TEST

/* ---- privileges ------------------------------------------------------------------------ */

static long status_field(pid_t pid, const char *key, int hex)
{
    char path[64], line[256];
    long v = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
            v = strtol(line + strlen(key) + 1, NULL, hex ? 16 : 10);
    fclose(f);
    return v;
}

START_TEST(running_kpud_keeps_no_capabilities)
{
    if (!need_root())
        return;
    start();
    /* Ready (the socket answers): everything that needed root is done. */
    ck_assert_int_eq(status_field(kpud, "NoNewPrivs", 0), 1);
    ck_assert_int_eq(status_field(kpud, "CapEff", 1), 0);
    ck_assert_int_eq(status_field(kpud, "CapPrm", 1), 0);
    ck_assert_int_eq(status_field(kpud, "CapInh", 1), 0);
    ck_assert_int_eq(status_field(kpud, "CapAmb", 1), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reliability-security");
    TCase *tc = tcase_create("security");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, socket_mode_and_owner);
    tcase_add_test(tc, roles_from_groups);
    tcase_add_test(tc, capture_names_stay_in_their_folder);
    tcase_add_test(tc, board_model_names_cannot_reach_other_manifests);
    tcase_add_test(tc, running_kpud_keeps_no_capabilities);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
