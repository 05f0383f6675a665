/* SPDX-License-Identifier: MIT */
/*
 * kmodel runtime benchmark: frames per second of each shared detection model with the
 * fast soft KPU (with every instruction set the CPU has, and limited to AVX2), against the
 * naive reference conv in the same run, on one core. The input is a fixed pseudo-random
 * frame (the arithmetic does not depend on content). Also checks that all give the same
 * main buffer, and prints how the fast path post-processed the output channels.
 * Usage: bench_kmodel [models-dir] [seconds-per-run] (default $KPU_TEST_DATA/models, 2 s).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hal/soft_kpu/soft_kpu.h"
#include "kmodel/kmodel.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        b = malloc((size_t)n);
        if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
            free(b);
            b = NULL;
        }
        *size = (size_t)n;
    }
    fclose(f);
    return b;
}

/* Frames per second of impl over at least `seconds` (and at least 2 frames). */
static double fps(const struct kfa_kmodel *m, const uint8_t *in, uint8_t *mb,
                  enum kfa_soft_kpu_impl impl, double seconds)
{
    struct kfa_kmodel_error err;
    int frames = 0;
    kfa_soft_kpu_set_impl(impl);
    double t0 = now_s(), t;
    do {
        if (kfa_kmodel_run(m, in, m->input_bytes, mb, m->main_size, kfa_hal_kpu_ram(),
                           KFA_ROUND_HALF_EVEN, &err) != 0) {
            fprintf(stderr, "run: %s\n", err.text);
            exit(1);
        }
        frames++;
        t = now_s() - t0;
    } while (t < seconds || frames < 2);
    return frames / t;
}

int main(int argc, char **argv)
{
    static const char *const models[] = {"maixpy_facedetect_320x240", "yolo2_voc20_320x240",
                                         "mask_yolo2_320x240", "face_mask_detect5_320x256"};
    char dir[4096], path[4200];
    const char *env = getenv("KPU_TEST_DATA");
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    if (argc > 1)
        snprintf(dir, sizeof dir, "%s", argv[1]);
    else if (env)
        snprintf(dir, sizeof dir, "%s/models", env);
    else {
        fprintf(stderr, "usage: bench_kmodel MODELS-DIR [SECONDS] (or set KPU_TEST_DATA)\n");
        return 2;
    }
    int best = kfa_soft_kpu_limit_isa(KFA_SOFT_KPU_ISA_BEST);
    printf("fast path instruction set here: %s\n", best >= KFA_SOFT_KPU_ISA_AVX512VNNI
                                                       ? "AVX-512 VNNI"
                                                   : best >= KFA_SOFT_KPU_ISA_AVX2 ? "AVX2"
                                                                                   : "portable");
    printf("%-28s %9s %9s %9s %8s %8s %s\n", "model", "fast fps", "avx2 fps", "naive fps", "ratio",
           "GMAC/s", "same output");
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        size_t size;
        struct kfa_kmodel m;
        struct kfa_kmodel_error err;
        snprintf(path, sizeof path, "%s/%s.kmodel", dir, models[i]);
        uint8_t *file = read_file(path, &size);
        if (!file || kfa_kmodel_load(&m, file, size, &err) != 0) {
            printf("%-28s skipped (%s)\n", models[i], file ? err.text : "not found");
            free(file);
            continue;
        }
        uint8_t *in = malloc(m.input_bytes), *a = malloc(m.main_size), *b = malloc(m.main_size),
                *c = malloc(m.main_size);
        unsigned s = 1;
        for (size_t k = 0; k < m.input_bytes; k++) {
            s = s * 1103515245u + 12345u;
            in[k] = (uint8_t)(s >> 16);
        }
        struct kfa_soft_kpu_fast_stats s0, s1;
        kfa_soft_kpu_fast_stats(&s0);
        double f_fast = fps(&m, in, a, KFA_SOFT_KPU_FAST, seconds);
        kfa_soft_kpu_fast_stats(&s1);
        kfa_soft_kpu_limit_isa(KFA_SOFT_KPU_ISA_AVX2);
        double f_avx2 = fps(&m, in, c, KFA_SOFT_KPU_FAST, seconds);
        kfa_soft_kpu_limit_isa(KFA_SOFT_KPU_ISA_BEST);
        double f_naive = fps(&m, in, b, KFA_SOFT_KPU_NAIVE, seconds);
        int same = memcmp(a, b, m.main_size) == 0 && memcmp(c, b, m.main_size) == 0;
        double nv = s1.vector - s0.vector, nc = s1.constant - s0.constant,
               ns = s1.scalar - s0.scalar, nt = nv + nc + ns > 0 ? nv + nc + ns : 1;
        printf("%-28s %9.1f %9.1f %9.2f %7.1fx %8.2f %s  (channels: %.1f%% vector, %.1f%% "
               "constant, %.1f%% int64)\n",
               models[i], f_fast, f_avx2, f_naive, f_fast / f_naive,
               f_fast * (double)m.total_macs * 1e-9, same ? "yes" : "NO", 100.0 * nv / nt,
               100.0 * nc / nt, 100.0 * ns / nt);
        free(in);
        free(a);
        free(b);
        free(c);
        free(file);
    }
    kfa_soft_kpu_set_impl(KFA_SOFT_KPU_FAST);
    return 0;
}
