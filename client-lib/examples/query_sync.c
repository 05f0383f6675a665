/* SPDX-License-Identifier: MIT */
/*
 * Example: the synchronous API. Connects to kpud, lists the boards, then prints the
 * detections of the last hour, newest first (the library fetches the pages).
 *   query_sync [max_rows]
 * Build: cc query_sync.c $(pkg-config --cflags --libs kpu-client)
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, poll */
#include <kpu/client.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int print_row(kpu_client_t *client, const struct kpu_client_row *row, void *user_data)
{
    (void)client;
    (void)user_data;
    printf("%" PRId64 " %s %s %.2f %d,%d %ux%u\n", row->time_ns, row->device, row->box.label,
           row->box.score, row->box.x, row->box.y, row->box.w, row->box.h);
    return 0; /* nonzero would stop the query */
}

int main(int argc, char **argv)
{
    struct kpu_client_query q = {0};
    struct kpu_client_device *devs;
    kpu_client_t *client;
    struct timespec now;
    size_t n;
    int r;

    r = kpu_client_open(NULL, &client);
    if (r < 0) {
        fprintf(stderr, "kpud: %s %s\n", kpu_client_strerror(r), kpu_client_open_error_text());
        return 2;
    }
    r = kpu_client_list_devices(client, &devs, &n);
    if (r == 0) {
        for (size_t i = 0; i < n; i++)
            printf("device %s %s %s\n", devs[i].id, devs[i].board,
                   kpu_client_device_state_name(devs[i].state));
        kpu_client_free(devs);
    }
    clock_gettime(CLOCK_REALTIME, &now);
    q.since_ns = ((int64_t)now.tv_sec - 3600) * 1000000000;
    q.max_rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 20;
    r = kpu_client_query(client, &q, print_row, NULL);
    if (r < 0)
        fprintf(stderr, "query: %s %s\n", kpu_client_strerror(r),
                kpu_client_last_error_text(client));
    else
        printf("%d rows\n", r);
    kpu_client_close(client);
    return r < 0 ? 1 : 0;
}
