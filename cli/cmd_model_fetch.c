/* SPDX-License-Identifier: MIT */
/*
 * kpuctl model fetch NAME [-o DIR] [--url URL] [--force]: download one of the well-known
 * public models (DESIGN.md §9) from its upstream repository, check it against the sha256
 * its manifest pins, and store it as DIR/<manifest name>.kmodel with the manifest beside
 * it as DIR/<manifest name>.ini. DIR defaults to the daemon's models folder
 * (<state dir>/models, where kpud --sim looks first).
 *
 * The manifests of firmware-agent/models/ are built into kpuctl (kpuctl_models.c, made
 * by cli/CMakeLists.txt), so an installed kpuctl needs no source tree. A manifest whose
 * url ends in "#MEMBER" names a file inside a zip upstream (a MaixPy .kfpkg is a zip of
 * the kmodel and a flash-list.json): the zip is downloaded and MEMBER taken out of it.
 *
 * Downloads use libcurl (http, https and file URLs; --url gives a mirror or a local copy,
 * still checked against the pinned sha256). SHA-256 is OpenSSL's (libcrypto EVP), the zip
 * member is inflated with zlib. Nothing is written unless the digest matches; files
 * appear atomically (temporary file, fsync, rename).
 *
 * Exit codes: 0 stored, 1 usage (unknown name), 6 download, zip, digest or write error.
 */
#define _GNU_SOURCE
#include "kpuctl.h"
#include "kpuctl_models.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "manifest.h"

/* Where kpud keeps fetched models: <state dir>/models, the state dir's default being
 * /var/lib/kpud (daemon/config.c kpud_config_defaults, daemon/devices.c data_dirs). */
#define DEFAULT_MODELS_DIR "/var/lib/kpud/models"

#define MAX_DOWNLOAD (64u * 1024u * 1024u) /* a kfpkg with a 6 MiB model is far below */
#define MAX_MODEL (16u * 1024u * 1024u)    /* K210 models fit in 6 MiB SRAM (DESIGN §2) */
#define CONNECT_TIMEOUT_S 20L
#define LOW_SPEED_BYTES 1024L /* abort when slower than this ... */
#define LOW_SPEED_TIME_S 30L  /* ... for this long */
#define MAX_REDIRECTS 5L
#define BAR_WIDTH 30

/* Short names people type, and the manifest (file stem) each stands for. */
static const struct {
    const char *alias;
    const char *stem;
} aliases[] = {
    {"face", "maixpy_facedetect_320x240"},
    {"voc20", "yolo2_voc20_320x240"},
    {"mask", "mask_yolo2_320x240"},
    {"facemask", "face_mask_detect5_320x256"},
    {"mnist", "mnist_28x28"},
    {"iris", "iris_fc"},
};

struct buf {
    uint8_t *data;
    size_t len, cap;
    int too_big;
};

struct fetch {
    struct kpuctl *k;
    int bar_shown;
};

static const struct kpuctl_model_text *find_model(const char *name)
{
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (strcmp(aliases[i].alias, name) == 0)
            name = aliases[i].stem;
    for (size_t i = 0; i < kpuctl_n_models; i++)
        if (strcmp(kpuctl_models[i].stem, name) == 0)
            return &kpuctl_models[i];
    return NULL;
}

static const char *alias_of(const char *stem)
{
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (strcmp(aliases[i].stem, stem) == 0)
            return aliases[i].alias;
    return "";
}

static void list_models(FILE *f)
{
    fprintf(f, "models:\n");
    for (size_t i = 0; i < kpuctl_n_models; i++)
        fprintf(f, "  %-9s %s\n", alias_of(kpuctl_models[i].stem), kpuctl_models[i].stem);
}

static size_t on_data(char *p, size_t size, size_t n, void *user_data)
{
    struct buf *b = user_data;
    size_t len = size * n;

    if (len > MAX_DOWNLOAD - b->len) {
        b->too_big = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256 * 1024;
        uint8_t *d;
        while (cap < b->len + len)
            cap *= 2;
        d = realloc(b->data, cap);
        if (!d)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return len;
}

static int on_progress(void *user_data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct fetch *f = user_data;
    int fill;
    (void)ultotal;
    (void)ulnow;

    if (!f->k->tty || f->k->json || dltotal <= 0)
        return 0;
    fill = (int)(dlnow * BAR_WIDTH / dltotal);
    fprintf(stderr, "\r[%.*s%*s] %3d%% %lld/%lld KiB", fill, "##############################",
            BAR_WIDTH - fill, "", (int)(dlnow * 100 / dltotal), (long long)(dlnow / 1024),
            (long long)(dltotal / 1024));
    f->bar_shown = 1;
    return 0;
}

/* Download url into b. Returns 0, or a curl error code (> 0) with err filled. */
static int download(struct fetch *f, const char *url, struct buf *b, char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    long status = 0;
    CURLcode rc;

    if (!c) {
        snprintf(err, errlen, "cannot start libcurl");
        return CURLE_FAILED_INIT;
    }
    err[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_DOWNLOAD);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "kpuctl/" KPUCTL_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, f);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    rc = curl_easy_perform(c);
    if (f->bar_shown)
        fprintf(stderr, "\n");
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (rc == CURLE_OK)
        return 0;
    if (b->too_big || rc == CURLE_FILESIZE_EXCEEDED)
        snprintf(err, errlen, "more than %u MiB, not a K210 model", MAX_DOWNLOAD >> 20);
    else if (!err[0])
        snprintf(err, errlen, "%s", curl_easy_strerror(rc));
    if (rc == CURLE_HTTP_RETURNED_ERROR && status)
        snprintf(err + strlen(err), errlen - strlen(err), " (HTTP %ld)", status);
    return (int)rc;
}

static int offline_error(CURLcode rc)
{
    return rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
           rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT ||
           rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR;
}

static uint32_t le16(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * ZIP structures, PKWARE APPNOTE.TXT 6.3: end of central directory record (4.3.16,
 * signature 0x06054b50, 22 bytes + comment of up to 65535), central directory header
 * (4.3.12, 0x02014b50, 46 bytes + name + extra + comment), local file header (4.3.7,
 * 0x04034b50, 30 bytes + name + extra). Methods (4.4.5): 0 stored, 8 deflated.
 */
#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP_EOCD_LEN 22u
#define ZIP_CDH_SIG 0x02014b50u
#define ZIP_CDH_LEN 46u
#define ZIP_LFH_SIG 0x04034b50u
#define ZIP_LFH_LEN 30u
#define ZIP_MAX_COMMENT 65535u
#define ZIP_STORED 0u
#define ZIP_DEFLATED 8u

/* Take member out of the zip z[0..zlen) into a new buffer. 0 or -1 with err filled. */
static int zip_extract(const uint8_t *z, size_t zlen, const char *member, uint8_t **out,
                       size_t *outlen, char *err, size_t errlen)
{
    size_t eocd = SIZE_MAX, pos, mlen = strlen(member);
    uint32_t count, cd_off;

    if (zlen < ZIP_EOCD_LEN) {
        snprintf(err, errlen, "not a zip file (%zu bytes)", zlen);
        return -1;
    }
    for (size_t i = zlen - ZIP_EOCD_LEN + 1; i-- > 0 && zlen - i <= ZIP_EOCD_LEN + ZIP_MAX_COMMENT;)
        if (le32(z + i) == ZIP_EOCD_SIG) {
            eocd = i;
            break;
        }
    if (eocd == SIZE_MAX) {
        snprintf(err, errlen, "not a zip file (no end of central directory)");
        return -1;
    }
    count = le16(z + eocd + 10);
    cd_off = le32(z + eocd + 16);
    pos = cd_off;
    for (uint32_t e = 0; e < count; e++) {
        uint32_t method, csize, usize, crc, nlen, xlen, clen, lho;
        size_t data;

        if (pos > eocd || eocd - pos < ZIP_CDH_LEN || le32(z + pos) != ZIP_CDH_SIG)
            break;
        method = le16(z + pos + 10);
        crc = le32(z + pos + 16);
        csize = le32(z + pos + 20);
        usize = le32(z + pos + 24);
        nlen = le16(z + pos + 28);
        xlen = le16(z + pos + 30);
        clen = le16(z + pos + 32);
        lho = le32(z + pos + 42);
        if (eocd - pos - ZIP_CDH_LEN < (size_t)nlen + xlen + clen)
            break;
        if (nlen != mlen || memcmp(z + pos + ZIP_CDH_LEN, member, mlen) != 0) {
            pos += ZIP_CDH_LEN + nlen + xlen + clen;
            continue;
        }
        if (lho > zlen || zlen - lho < ZIP_LFH_LEN || le32(z + lho) != ZIP_LFH_SIG) {
            snprintf(err, errlen, "zip member %.100s: bad local header", member);
            return -1;
        }
        data = (size_t)lho + ZIP_LFH_LEN + le16(z + lho + 26) + le16(z + lho + 28);
        if (data > zlen || zlen - data < csize || usize > MAX_MODEL) {
            snprintf(err, errlen, "zip member %.100s: sizes out of range", member);
            return -1;
        }
        *out = malloc(usize ? usize : 1);
        if (!*out) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (method == ZIP_STORED && csize == usize) {
            memcpy(*out, z + data, usize);
        } else if (method == ZIP_DEFLATED) {
            z_stream s = {0};
            int zr = inflateInit2(&s, -MAX_WBITS); /* raw deflate, no zlib header */
            if (zr == Z_OK) {
                s.next_in = (Bytef *)(z + data);
                s.avail_in = csize;
                s.next_out = *out;
                s.avail_out = usize;
                zr = inflate(&s, Z_FINISH);
                if (zr == Z_STREAM_END && s.total_out != usize)
                    zr = Z_DATA_ERROR;
                inflateEnd(&s);
            }
            if (zr != Z_STREAM_END) {
                free(*out);
                *out = NULL;
                *out = NULL;
                snprintf(err, errlen, "zip member %.100s: cannot inflate (zlib %d)", member, zr);
                return -1;
            }
        } else {
            free(*out);
            *out = NULL;
            snprintf(err, errlen, "zip member %.100s: compression method %u not supported", member,
                     method);
            return -1;
        }
        if (crc32(0L, *out, usize) != crc) {
            free(*out);
            *out = NULL;
            snprintf(err, errlen, "zip member %.100s: CRC-32 mismatch", member);
            return -1;
        }
        *outlen = usize;
        return 0;
    }
    snprintf(err, errlen, "the zip has no member %.100s", member);
    return -1;
}

static int sha256_hex(const uint8_t *p, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (!EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -1;
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static int mkdir_p(const char *dir)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(path))
        return -ENAMETOOLONG;
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Write data to dir/name atomically. Returns 0 or -errno. */
static int write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    const uint8_t *p = data;
    int fd, r = 0;

    if ((size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= sizeof(dst) ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name) >= sizeof(tmp))
        return -ENAMETOOLONG;
    fd = mkstemp(tmp);
    if (fd < 0)
        return -errno;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -errno : -EIO;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    if (r == 0 && fchmod(fd, 0644) < 0)
        r = -errno;
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, dst) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
    return r;
}

static int fail(struct kpuctl *k, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Print "kpuctl model: ..." on stderr (and an error object on stdout with --json). */
static int fail(struct kpuctl *k, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (k->json) {
        printf("{\"error\":{\"code\":\"%s\",\"message\":", code);
        kpuctl_json_str(stdout, msg);
        printf(",\"exit\":%d}}\n", KPUCTL_EXIT_DEVICE);
    }
    fprintf(stderr, "kpuctl %s fetch: %s\n", k->verb, msg);
    return KPUCTL_EXIT_DEVICE;
}

int cmd_model_fetch(struct kpuctl *k, int argc, char **argv)
{
    const char *name = NULL, *dir = NULL, *url_opt = NULL;
    const struct kpuctl_model_text *mt;
    struct kfa_manifest *m = NULL;
    struct kfa_manifest_error merr;
    struct fetch f = {.k = k};
    struct buf b = {0};
    char url[KFA_MANIFEST_URL_MAX + PATH_MAX], err[CURL_ERROR_SIZE + 128], hex[65], fname[128];
    char *member;
    uint8_t *model = NULL;
    size_t model_len = 0;
    int r, force = 0, default_dir = 0, ret;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
            url_opt = argv[++i];
        else if (strcmp(argv[i], "--force") == 0)
            force = 1;
        else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else
            return kpuctl_usage_error(k, "unexpected '%s'", argv[i]);
    }
    if (!name) {
        kpuctl_usage_error(k, "fetch needs a model name");
        list_models(stderr);
        return KPUCTL_EXIT_USAGE;
    }
    mt = find_model(name);
    if (!mt) {
        kpuctl_usage_error(k, "no model called '%s'", name);
        list_models(stderr);
        return KPUCTL_EXIT_USAGE;
    }
    if (!dir) {
        dir = DEFAULT_MODELS_DIR;
        default_dir = 1;
    }

    m = malloc(sizeof(*m));
    if (!m)
        return fail(k, "ENOMEM", "out of memory");
    if (kfa_manifest_parse_string(mt->text, mt->len, mt->stem, m, &merr) < 0) {
        ret = fail(k, "EMANIFEST", "built-in manifest: %s", merr.text);
        goto out;
    }
    if (!m->sha256[0]) {
        ret = fail(k, "EMANIFEST", "the manifest of %s pins no sha256", m->name);
        goto out;
    }
    snprintf(url, sizeof(url), "%s", url_opt ? url_opt : m->url);
    if (!url[0]) {
        ret = fail(k, "ENOURL", "the manifest of %s has no download url; give one with --url",
                   m->name);
        goto out;
    }
    /* "#MEMBER": the model is that member of a zip (curl does not send the fragment). */
    member = strchr(url, '#');
    if (member)
        *member++ = '\0';
    snprintf(fname, sizeof(fname), "%s.kmodel", m->name);

    if (!force) {
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, fname);
        if (stat(path, &st) == 0) {
            struct buf have = {0};
            FILE *fp = fopen(path, "rb");
            if (fp && (size_t)st.st_size <= MAX_MODEL) {
                have.data = malloc((size_t)st.st_size + 1);
                if (have.data &&
                    fread(have.data, 1, (size_t)st.st_size, fp) == (size_t)st.st_size &&
                    sha256_hex(have.data, (size_t)st.st_size, hex) == 0 &&
                    strcmp(hex, m->sha256) == 0) {
                    fclose(fp);
                    free(have.data);
                    if (k->json) {
                        printf("{\"name\":");
                        kpuctl_json_str(stdout, m->name);
                        printf(",\"file\":");
                        kpuctl_json_str(stdout, path);
                        printf(",\"sha256\":\"%s\",\"size\":%lld,\"downloaded\":false}\n", hex,
                               (long long)st.st_size);
                    } else {
                        printf("%s is already there and matches its sha256\n", path);
                    }
                    ret = 0;
                    goto out;
                }
                free(have.data);
            }
            if (fp)
                fclose(fp);
        }
    }

    if (!k->json && k->tty)
        fprintf(stderr, "downloading %s\n", url);
    r = download(&f, url, &b, err, sizeof(err));
    if (r) {
        char zipnote[384] = "";
        if (member)
            snprintf(zipnote, sizeof(zipnote),
                     " (upstream the model is the member %.64s of that .kfpkg, a zip: give "
                     "--url 'file:///PATH/TO.kfpkg#%.64s', or file:///PATH/TO.kmodel for the "
                     "bare model)",
                     member, member);
        if (offline_error((CURLcode)r))
            ret = fail(k, "EOFFLINE",
                       "cannot download %s: %s. This machine looks offline; copy the file here "
                       "by other means and give it with --url file:///PATH%s",
                       url, err, zipnote);
        else
            ret = fail(k, "EDOWNLOAD", "cannot download %s: %s%s", url, err, zipnote);
        goto out;
    }
    if (member) {
        ret = zip_extract(b.data, b.len, member, &model, &model_len, err, sizeof(err));
        if (ret < 0) {
            ret = fail(k, "EZIP", "%s: %s (upstream the model is the member %s of a .kfpkg zip)",
                       url, err, member);
            goto out;
        }
    } else {
        model = b.data;
        model_len = b.len;
        b.data = NULL;
        if (model_len > MAX_MODEL) {
            ret =
                fail(k, "ETOOBIG", "%s: %zu bytes, more than a K210 model can be", url, model_len);
            goto out;
        }
    }
    if (sha256_hex(model, model_len, hex) < 0) {
        ret = fail(k, "ESHA256", "cannot compute SHA-256 (OpenSSL)");
        goto out;
    }
    if (strcmp(hex, m->sha256) != 0) {
        ret = fail(k, "ESHA256",
                   "sha256 mismatch for %s: got %s, the manifest pins %s; nothing was written", url,
                   hex, m->sha256);
        goto out;
    }
    r = mkdir_p(dir);
    if (r == 0)
        r = write_atomic(dir, fname, model, model_len);
    if (r == 0) {
        char ini[128];
        snprintf(ini, sizeof(ini), "%s.ini", m->name);
        r = write_atomic(dir, ini, mt->text, mt->len);
    }
    if (r < 0) {
        ret = fail(k, "EWRITE", "cannot write %s/%s: %s%s", dir, fname, strerror(-r),
                   r == -EACCES && default_dir
                       ? " (run as root or a member of kpu-admin, or give -o DIR)"
                       : "");
        goto out;
    }
    if (k->json) {
        printf("{\"name\":");
        kpuctl_json_str(stdout, m->name);
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, fname);
        printf(",\"file\":");
        kpuctl_json_str(stdout, path);
        printf(",\"sha256\":\"%s\",\"size\":%zu,\"downloaded\":true}\n", hex, model_len);
    } else {
        printf("%s/%s: %zu bytes, sha256 %s ok; manifest %s/%s.ini\n", dir, fname, model_len, hex,
               dir, m->name);
    }
    ret = 0;
out:
    free(model);
    free(b.data);
    free(m);
    return ret;
}
