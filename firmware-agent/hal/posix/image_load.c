/* SPDX-License-Identifier: MIT */
/*
 * Image decoding for kpu-agent-sim. PNG and BMP go through stb_image (Debian libstb-dev;
 * this is the only file that instantiates it). JPEG goes through libjpeg-turbo (Debian
 * libjpeg62-turbo-dev) with its default settings (islow IDCT, fancy upsampling): that is the
 * decoder Pillow uses, which produced the expected results in the shared models' .md files, and
 * stb_image's JPEG decoder gives pixels different enough to move borderline detections
 * (face_man_cap with --rounding up: a different anchor wins, IoU 0.79 against the .md).
 */
#include "image_load.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_MAX_DIMENSIONS KFA_IMAGE_MAX_SIDE
#define STB_IMAGE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#define RGB_CHANNELS 3

/* libjpeg reports fatal errors through error_exit, which must not return: jump back. */
struct jpeg_fail {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
};

static void jpeg_fail_exit(j_common_ptr cinfo)
{
    struct jpeg_fail *jf = (struct jpeg_fail *)cinfo->err;

    jf->mgr.format_message(cinfo, jf->msg);
    longjmp(jf->jump, 1);
}

static void jpeg_quiet(j_common_ptr cinfo, int level)
{
    (void)cinfo;
    (void)level; /* warnings (corrupt data recovered from) are not printed */
}

/* Decode a JPEG file to interleaved RGB; returns 0 or -1 with errbuf set. */
static int load_jpeg(FILE *f, const char *path, struct kfa_loaded_image *img, char *errbuf,
                     size_t errlen)
{
    struct jpeg_decompress_struct cinfo;
    struct jpeg_fail jf;
    unsigned char *volatile px = NULL;

    memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&jf.mgr);
    jf.mgr.error_exit = jpeg_fail_exit;
    jf.mgr.emit_message = jpeg_quiet;
    if (setjmp(jf.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(px);
        snprintf(errbuf, errlen, "%s: cannot decode JPEG (%s)", path, jf.msg);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = JCS_RGB;
    if (cinfo.image_width == 0 || cinfo.image_height == 0 ||
        cinfo.image_width > KFA_IMAGE_MAX_SIDE || cinfo.image_height > KFA_IMAGE_MAX_SIDE) {
        snprintf(errbuf, errlen, "%s: image size %ux%u out of range", path,
                 (unsigned)cinfo.image_width, (unsigned)cinfo.image_height);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != RGB_CHANNELS) {
        snprintf(errbuf, errlen, "%s: JPEG with %d components", path, cinfo.output_components);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    px = malloc((size_t)cinfo.output_width * cinfo.output_height * RGB_CHANNELS);
    if (!px) {
        snprintf(errbuf, errlen, "%s: out of memory", path);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = px + (size_t)cinfo.output_scanline * cinfo.output_width * RGB_CHANNELS;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    img->rgb = px;
    img->width = cinfo.output_width;
    img->height = cinfo.output_height;
    img->from_stb = 0;
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

int kfa_image_load(const char *path, struct kfa_loaded_image *img, char *errbuf, size_t errlen)
{
    static const unsigned char jpeg_magic[3] = {0xff, 0xd8, 0xff}; /* SOI + next marker */
    unsigned char magic[3] = {0};
    int w = 0, h = 0, n = 0;
    FILE *f;
    unsigned char *px;

    memset(img, 0, sizeof(*img));
    f = fopen(path, "rb");
    if (!f) {
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fread(magic, 1, sizeof(magic), f) == sizeof(magic) &&
        !memcmp(magic, jpeg_magic, sizeof(magic))) {
        int r;
        rewind(f);
        r = load_jpeg(f, path, img, errbuf, errlen);
        fclose(f);
        return r;
    }
    rewind(f);
    px = stbi_load_from_file(f, &w, &h, &n, RGB_CHANNELS);
    fclose(f);
    if (!px) {
        snprintf(errbuf, errlen, "%s: cannot decode image (%s)", path, stbi_failure_reason());
        return -1;
    }
    if (w <= 0 || h <= 0 || (unsigned)w > KFA_IMAGE_MAX_SIDE || (unsigned)h > KFA_IMAGE_MAX_SIDE) {
        stbi_image_free(px);
        snprintf(errbuf, errlen, "%s: image size %dx%d out of range", path, w, h);
        return -1;
    }
    img->rgb = px;
    img->width = (uint32_t)w;
    img->height = (uint32_t)h;
    img->from_stb = 1;
    return 0;
}

void kfa_image_free(struct kfa_loaded_image *img)
{
    if (!img)
        return;
    if (img->from_stb)
        stbi_image_free(img->rgb);
    else
        free(img->rgb);
    memset(img, 0, sizeof(*img));
}
