/* SPDX-License-Identifier: MIT */
/*
 * Example: live detections in a poll() loop of your own (the libmosquitto external-loop
 * pattern). Reconnects by itself when kpud restarts.
 *   watch_poll [count]     (stops after count events; default 10)
 * Build: cc watch_poll.c $(pkg-config --cflags --libs kpu-client)
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, poll */
#include <kpu/client.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

struct state {
    long left;
};

static void on_event(kpu_client_t *client, const struct kpu_client_event *ev, void *user_data)
{
    struct state *st = user_data;
    (void)client;
    if (ev->type == KPU_CLIENT_EVENT_DETECTION) {
        const struct kpu_client_detection *d = ev->detection;
        printf("%s seq %u: %zu boxes", d->device, d->frame_seq, d->n_boxes);
        for (size_t i = 0; i < d->n_boxes; i++)
            printf(" %s(%.2f)", d->boxes[i].label, d->boxes[i].score);
        printf("\n");
        st->left--;
    } else if (ev->type == KPU_CLIENT_EVENT_DROPPED) {
        printf("(%llu events dropped: this program was too slow)\n",
               (unsigned long long)ev->dropped_count);
    }
    fflush(stdout);
}

static void on_state(kpu_client_t *client, int state, int err, int restarted, void *user_data)
{
    (void)client;
    (void)user_data;
    fprintf(stderr, "kpud %s%s%s\n", state == KPU_CLIENT_STATE_CONNECTED ? "connected" : "lost: ",
            state == KPU_CLIENT_STATE_CONNECTED ? "" : kpu_client_strerror(err),
            restarted ? " (daemon restarted)" : "");
}

int main(int argc, char **argv)
{
    struct kpu_client_opts opts = {0};
    struct state st = {argc > 1 ? strtol(argv[1], NULL, 10) : 10};
    kpu_client_t *client;
    int r;

    opts.client_name = "watch_poll";
    opts.reconnect = 1;
    opts.state_cb = on_state;
    r = kpu_client_open(&opts, &client);
    if (r < 0) {
        fprintf(stderr, "kpud: %s\n", kpu_client_strerror(r));
        return 2;
    }
    r = kpu_client_subscribe(client, NULL, NULL, on_event, &st, NULL);
    while (r == 0 && st.left > 0) {
        struct pollfd p = {.fd = kpu_client_get_fd(client), .events = POLLIN};
        if (kpu_client_want_write(client))
            p.events |= POLLOUT;
        /* While disconnected the fd is negative: poll() ignores it and we sleep until the
         * reconnect is due. */
        if (poll(&p, 1, kpu_client_next_timeout_ms(client)) < 0)
            break;
        r = kpu_client_process(client);
    }
    if (r < 0)
        fprintf(stderr, "watch: %s\n", kpu_client_strerror(r));
    kpu_client_close(client);
    return r < 0 ? 1 : 0;
}
