/* SPDX-License-Identifier: MIT */
/*
 * Helper for the store's kill -9 test (check_store_crash.c): ingests detection frames into
 * the store at full speed on a real libuv loop, forever, and prints the frame_seq of the
 * last frame of every committed batch on its own line (flushed at once). The test kills
 * it with SIGKILL at random moments and then checks that every frame up to each printed
 * number is in the database.
 *
 * Usage: store_ingest_child DB DEVICE
 * Frame i (from 1) of DEVICE has i % 4 boxes; box k has class (i + k) % 3.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "store.h"

/* Frames handed to the store per idle callback, and the queue depth we stop adding at
 * (kept below the store's bound so nothing is dropped and every frame must be present). */
#define FRAMES_PER_TICK 64
#define QUEUE_HIGH 4096

static const char *const labels[3] = {"face", "person", "cat"};

struct child {
    struct kpud_store *s;
    const char *device;
    int64_t session;
    uint32_t next_seq;
};

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_committed(struct kpud_store *s, const struct kpud_store_batch_info *info, void *ud)
{
    (void)s;
    (void)ud;
    if (!info->frames)
        return;
    printf("%u\n", info->last_frame_seq);
    fflush(stdout);
}

static void on_idle(uv_idle_t *h)
{
    struct child *c = h->data;
    struct kpud_store_counters cnt;
    struct kpud_box_rec boxes[4];
    struct kpud_frame_rec f;

    kpud_store_get_counters(c->s, &cnt);
    if (cnt.queue_frames >= QUEUE_HIGH)
        return;
    for (int n = 0; n < FRAMES_PER_TICK; n++) {
        uint32_t i = c->next_seq++;

        memset(&f, 0, sizeof(f));
        f.device = c->device;
        f.session_id = c->session;
        f.frame_seq = i;
        f.device_time_us = (uint64_t)i * 33333;
        f.host_time_ns = now_ns();
        f.model = "facedetect";
        f.image_width = 320;
        f.image_height = 240;
        f.kpu_us = 15000;
        f.n_boxes = i % 4;
        for (uint32_t k = 0; k < f.n_boxes; k++) {
            boxes[k].class_id = (i + k) % 3;
            boxes[k].label = labels[boxes[k].class_id];
            boxes[k].score = 0.5f;
            boxes[k].x = (int32_t)k * 10;
            boxes[k].y = 5;
            boxes[k].w = 20;
            boxes[k].h = 30;
        }
        f.boxes = boxes;
        if (kpud_store_add_frame(c->s, &f) < 0) {
            fprintf(stderr, "store_ingest_child: add_frame failed\n");
            exit(2);
        }
    }
}

int main(int argc, char **argv)
{
    uv_loop_t *loop = uv_default_loop();
    struct kpud_store_opts opts = {0};
    struct kpud_session_rec sr = {0};
    struct kpud_device_rec dr = {0};
    struct child c = {0};
    uv_idle_t idle;
    int r;

    if (argc != 3) {
        fprintf(stderr, "usage: store_ingest_child DB DEVICE\n");
        return 64;
    }
    opts.path = argv[1];
    opts.committed = on_committed;
    r = kpud_store_open(loop, &opts, &c.s);
    if (r < 0) {
        fprintf(stderr, "store_ingest_child: open: %s\n", strerror(-r));
        return 1;
    }
    c.device = argv[2];
    c.next_seq = 1;
    dr.id = c.device;
    dr.board = "sim";
    dr.transport = "sim";
    dr.seen_ns = now_ns();
    sr.device = c.device;
    sr.start_ns = dr.seen_ns;
    sr.agent_version = "crash-test";
    if (kpud_store_device_seen(c.s, &dr) < 0 || kpud_store_session_begin(c.s, &sr, &c.session) < 0)
        return 1;
    uv_idle_init(loop, &idle);
    idle.data = &c;
    uv_idle_start(&idle, on_idle);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
