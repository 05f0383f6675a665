/* SPDX-License-Identifier: MIT */
/*
 * Fan-out (issue 5, Performance): kpud's IPC server against mosquitto on the same
 * messages, 1, 8 and 64 subscribers. Goals: >= 5x the deliveries per CPU-second of the
 * broker, and p99 latency < 1 ms at 8 clients x 1,000 msg/s.
 *
 *   bench_fanout [SECONDS]
 *
 * kpud side: a child process runs kpud's IPC server (daemon/ipc, the code kpud runs) on a
 * libuv loop with an event generator in place of the boards: once every subscriber is
 * there it publishes DetectionEvents (2 boxes, host_time_ns = CLOCK_REALTIME at publish)
 * at RATE per second, paced by a 1 ms timer. Subscribers: libkpu-client connections in
 * this process, polled together; latency = receipt - host_time_ns.
 * mosquitto side: mosquitto (Debian's, started here with a private configuration
 * listening on 127.0.0.1 only, no persistence) and a publisher child sending the same
 * packed DetectionEvent bytes at the same pace with QoS 0; subscribers: libmosquitto
 * clients in this process, decoding the payload for its timestamp. libmosquitto is
 * loaded with dlopen at run time so the benchmark builds without it; without mosquitto
 * the comparison is skipped with a message.
 * CPU: the server process's user + system time over the publishing window and the drain
 * after it (/proc/PID/stat). The kpud side's figure includes its generator (building and
 * encoding the events); the broker's excludes its publisher, which runs in another
 * process: the comparison leans against kpud.
 */
#include "bench_util.h"

#include <dlfcn.h>
#include <kpu/client.h>
#include <poll.h>
#include <stdbool.h>
#include <uv.h>

#include "ipc_server.h"

#define MAX_SUBS 64
#define MAX_LAT_SAMPLES 200000u
#define DRAIN_MS 3000u
#define TOPIC "kpu/detections"
#define N_BOXES 2

static const struct {
    unsigned subs, rate;
} configs[] = {{1, 20000}, {8, 5000}, {64, 1000}};
#define LAT_SUBS 8
#define LAT_RATE 1000

/* ---- the event both servers carry ---- */

static void make_event(Kpu__Ipc__V1__DetectionEvent *ev, Kpu__Ipc__V1__Box *boxes,
                       Kpu__Ipc__V1__Box **ptrs, uint32_t seq)
{
    kpu__ipc__v1__detection_event__init(ev);
    ev->device = (char *)"5f3a9c0012345678";
    ev->frame_seq = seq;
    ev->device_time_us = (uint64_t)seq * 33333u;
    ev->host_time_ns = bu_wall_ns();
    ev->model = (char *)"maixpy_facedetect_320x240";
    ev->image_width = 320;
    ev->image_height = 240;
    ev->kpu_us = 11800;
    for (int k = 0; k < N_BOXES; k++) {
        kpu__ipc__v1__box__init(&boxes[k]);
        boxes[k].class_id = 0;
        boxes[k].label = (char *)"face";
        boxes[k].score = 0.93f - 0.1f * (float)k;
        boxes[k].x = 108 + 60 * k;
        boxes[k].y = 30;
        boxes[k].w = 64;
        boxes[k].h = 86;
        ptrs[k] = &boxes[k];
    }
    ev->boxes = ptrs;
    ev->n_boxes = N_BOXES;
}

/* Messages due after elapsed ns at rate per second (the pacing both publishers use). */
static uint64_t due(uint64_t elapsed_ns, unsigned rate, uint64_t count)
{
    uint64_t n = elapsed_ns / 1000000u * rate / 1000u + 1;
    return n < count ? n : count;
}

/* ---- kpud side: the IPC server with a generator (child process) ---- */

struct gen {
    struct kpud_ipc_server *srv;
    uv_timer_t tick;
    unsigned subs, rate;
    uint64_t count, sent, t0;
    int started;
};

static void backend_request(void *ctx, struct kpud_ipc_request *req,
                            const Kpu__Ipc__V1__Frame *frame)
{
    (void)ctx;
    (void)frame;
    kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__UNKNOWN_REQUEST, "benchmark server",
                          NULL);
}

static void on_closed(void *arg)
{
    (void)arg;
}

static void on_tick(uv_timer_t *t)
{
    struct gen *g = t->data;
    Kpu__Ipc__V1__DetectionEvent ev;
    Kpu__Ipc__V1__Box boxes[N_BOXES], *ptrs[N_BOXES];
    uint64_t n;

    if (!g->started) {
        if (kpud_ipc_server_subscriptions(g->srv) < g->subs)
            return;
        g->started = 1;
        g->t0 = bu_mono_ns();
    }
    n = due(bu_mono_ns() - g->t0, g->rate, g->count);
    while (g->sent < n) {
        make_event(&ev, boxes, ptrs, (uint32_t)++g->sent);
        kpud_ipc_publish_detection(g->srv, &ev);
    }
    /* Done once every subscriber left (the parent closes them when it has everything). */
    if (g->sent == g->count && kpud_ipc_server_subscriptions(g->srv) == 0) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
        kpud_ipc_server_close(g->srv, on_closed, NULL);
    }
}

static int serve_kpud(const char *sock, unsigned subs, unsigned rate, uint64_t count)
{
    static const struct kpud_ipc_backend backend = {.request = backend_request};
    struct kpud_ipc_opts o = {0};
    struct gen g = {.subs = subs, .rate = rate, .count = count};
    uv_loop_t *loop = uv_default_loop();
    int r;

    signal(SIGPIPE, SIG_IGN);
    o.path = sock;
    o.listen_fd = -1;
    o.reader_gid = (gid_t)-1;
    o.admin_gid = (gid_t)-1;
    o.everyone_admin = 1;
    o.max_clients = MAX_SUBS + 8;
    o.server_version = "bench";
    o.backend = &backend;
    r = kpud_ipc_server_open(loop, &o, &g.srv);
    if (r < 0) {
        fprintf(stderr, "bench_fanout: ipc server: %s\n", strerror(-r));
        return 1;
    }
    uv_timer_init(loop, &g.tick);
    g.tick.data = &g;
    uv_timer_start(&g.tick, on_tick, 1, 1);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}

/* ---- libmosquitto, loaded at run time ---- */

struct mosquitto;
struct mosquitto_message { /* mosquitto.h (libmosquitto 1.x/2.x ABI) */
    int mid;
    char *topic;
    void *payload;
    int payloadlen;
    int qos;
    bool retain;
};

static struct {
    void *h;
    int (*lib_init)(void);
    struct mosquitto *(*new_)(const char *, bool, void *);
    void (*destroy)(struct mosquitto *);
    int (*connect)(struct mosquitto *, const char *, int, int);
    int (*subscribe)(struct mosquitto *, int *, const char *, int);
    int (*publish)(struct mosquitto *, int *, const char *, int, const void *, int, bool);
    void (*message_cb)(struct mosquitto *,
                       void (*)(struct mosquitto *, void *, const struct mosquitto_message *));
    void (*subscribe_cb)(struct mosquitto *,
                         void (*)(struct mosquitto *, void *, int, int, const int *));
    int (*socket_)(struct mosquitto *);
    int (*loop_read)(struct mosquitto *, int);
    int (*loop_write)(struct mosquitto *, int);
    int (*loop_misc)(struct mosquitto *);
    bool (*want_write)(struct mosquitto *);
    int (*disconnect)(struct mosquitto *);
} mq;

static int load_mosquitto(void)
{
    mq.h = dlopen("libmosquitto.so.1", RTLD_NOW);
    if (!mq.h)
        return -1;
#define SYM(f, n)                                                                                  \
    do {                                                                                           \
        *(void **)&mq.f = dlsym(mq.h, n);                                                          \
        if (!mq.f)                                                                                 \
            return -1;                                                                             \
    } while (0)
    SYM(lib_init, "mosquitto_lib_init");
    SYM(new_, "mosquitto_new");
    SYM(destroy, "mosquitto_destroy");
    SYM(connect, "mosquitto_connect");
    SYM(subscribe, "mosquitto_subscribe");
    SYM(publish, "mosquitto_publish");
    SYM(message_cb, "mosquitto_message_callback_set");
    SYM(subscribe_cb, "mosquitto_subscribe_callback_set");
    SYM(socket_, "mosquitto_socket");
    SYM(loop_read, "mosquitto_loop_read");
    SYM(loop_write, "mosquitto_loop_write");
    SYM(loop_misc, "mosquitto_loop_misc");
    SYM(want_write, "mosquitto_want_write");
    SYM(disconnect, "mosquitto_disconnect");
#undef SYM
    mq.lib_init();
    return 0;
}

/* Publisher child: the same events, packed, at the same pace, QoS 0. */
static int publish_mqtt(int port, unsigned rate, uint64_t count)
{
    struct mosquitto *m;
    Kpu__Ipc__V1__DetectionEvent ev;
    Kpu__Ipc__V1__Box boxes[N_BOXES], *ptrs[N_BOXES];
    uint8_t buf[512];
    uint64_t sent = 0, t0;

    if (load_mosquitto() < 0 || !(m = mq.new_("bench-pub", true, NULL)) ||
        mq.connect(m, "127.0.0.1", port, 60) != 0)
        return 1;
    t0 = bu_mono_ns();
    while (sent < count) {
        uint64_t n = due(bu_mono_ns() - t0, rate, count);
        while (sent < n) {
            size_t len;
            make_event(&ev, boxes, ptrs, (uint32_t)++sent);
            len = kpu__ipc__v1__detection_event__pack(&ev, buf);
            mq.publish(m, NULL, TOPIC, (int)len, buf, 0, false);
        }
        while (mq.want_write(m))
            mq.loop_write(m, 1);
        mq.loop_read(m, 1); /* CONNACK, pings */
        mq.loop_misc(m);
        bu_sleep_ms(1);
    }
    mq.disconnect(m);
    mq.loop_write(m, 1);
    mq.destroy(m);
    return 0;
}

/* ---- subscribers (this process) ---- */

struct subs {
    uint64_t received, dropped;
    uint64_t *lat; /* ns */
    size_t n_lat;
    int subscribed;
};

static void record(struct subs *s, int64_t sent_ns)
{
    int64_t d = bu_wall_ns() - sent_ns;
    s->received++;
    if (s->n_lat < MAX_LAT_SAMPLES)
        s->lat[s->n_lat++] = d > 0 ? (uint64_t)d : 0;
}

static void on_kpu_event(kpu_client_t *c, const struct kpu_client_event *ev, void *ud)
{
    (void)c;
    if (ev->type == KPU_CLIENT_EVENT_DETECTION)
        record(ud, ev->detection->host_time_ns);
    else if (ev->type == KPU_CLIENT_EVENT_DROPPED)
        ((struct subs *)ud)->dropped += ev->dropped_count;
}

static void on_mqtt_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    Kpu__Ipc__V1__DetectionEvent *ev;
    (void)m;
    ev = kpu__ipc__v1__detection_event__unpack(NULL, (size_t)msg->payloadlen, msg->payload);
    if (ev) {
        record(ud, ev->host_time_ns);
        kpu__ipc__v1__detection_event__free_unpacked(ev, NULL);
    }
}

static void on_mqtt_subscribed(struct mosquitto *m, void *ud, int mid, int n, const int *qos)
{
    (void)m;
    (void)mid;
    (void)n;
    (void)qos;
    ((struct subs *)ud)->subscribed++;
}

struct result {
    uint64_t expected, received, dropped;
    double secs, cpu;
    double p50, p99, max;
    int ok;
};

/* Wait (processing) until every subscriber has count messages or the stream went quiet
 * for DRAIN_MS after the publisher should have finished. */
static int kpu_side(unsigned n_subs, unsigned rate, unsigned seconds, struct result *res)
{
    char dir[] = "/tmp/kpu-bench-fanout-XXXXXX", sock[96], cnt[32], subs_s[16], rate_s[16];
    uint64_t count = (uint64_t)rate * seconds, t0 = 0, last = 0;
    kpu_client_t *c[MAX_SUBS] = {0};
    struct pollfd pfd[MAX_SUBS];
    struct subs s = {0};
    double cpu0 = 0;
    pid_t pid;
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);

    memset(res, 0, sizeof(*res));
    if (sl <= 0 || !mkdtemp(dir))
        return -1;
    self[sl] = 0;
    snprintf(sock, sizeof(sock), "%s/kpud.sock", dir);
    snprintf(cnt, sizeof(cnt), "%llu", (unsigned long long)count);
    snprintf(subs_s, sizeof(subs_s), "%u", n_subs);
    snprintf(rate_s, sizeof(rate_s), "%u", rate);
    {
        char *args[] = {self, "--serve-kpud", sock, subs_s, rate_s, cnt, NULL};
        pid = bu_spawn(args, NULL);
    }
    s.lat = malloc(MAX_LAT_SAMPLES * sizeof(*s.lat));
    if (pid < 0 || !s.lat || bu_wait_path(sock, pid, 5000) < 0)
        goto fail;
    for (unsigned i = 0; i < n_subs; i++) {
        struct kpu_client_opts o = {.socket_path = sock, .client_name = "bench-sub"};
        if (kpu_client_open(&o, &c[i]) < 0 ||
            kpu_client_subscribe(c[i], NULL, NULL, on_kpu_event, &s, NULL) < 0)
            goto fail;
    }
    cpu0 = bu_proc_cpu_s(pid);
    t0 = last = bu_mono_ns();
    while (s.received + s.dropped < count * n_subs) {
        int n;
        for (unsigned i = 0; i < n_subs; i++)
            pfd[i] = (struct pollfd){.fd = kpu_client_get_fd(c[i]), .events = POLLIN};
        n = poll(pfd, n_subs, 10);
        for (unsigned i = 0; n > 0 && i < n_subs; i++)
            if (pfd[i].revents)
                kpu_client_process(c[i]);
        if (n > 0)
            last = bu_mono_ns();
        else if (bu_mono_ns() - t0 > (uint64_t)seconds * 1000000000u &&
                 bu_mono_ns() - last > DRAIN_MS * 1000000ull)
            break;
    }
    res->secs = (double)(last - t0) / 1e9;
    res->cpu = bu_proc_cpu_s(pid) - cpu0;
    res->ok = 1;
fail:
    for (unsigned i = 0; i < n_subs; i++)
        kpu_client_close(c[i]);
    if (pid > 0)
        bu_stop(pid, NULL);
    res->expected = count * n_subs;
    res->received = s.received;
    res->dropped = s.dropped;
    res->p50 = bu_pct_us(s.lat, s.n_lat, 50);
    res->p99 = bu_pct_us(s.lat, s.n_lat, 99);
    res->max = bu_pct_us(s.lat, s.n_lat, 100);
    free(s.lat);
    bu_rm_rf(dir);
    return res->ok ? 0 : -1;
}

static int free_port(void)
{
    return 20000 + (int)(getpid() % 20000);
}

static int mqtt_side(const char *mosquitto, unsigned n_subs, unsigned rate, unsigned seconds,
                     struct result *res)
{
    char dir[] = "/tmp/kpu-bench-mqtt-XXXXXX", conf[96], port_s[16], cnt[32], rate_s[16];
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    uint64_t count = (uint64_t)rate * seconds, t0, last;
    struct mosquitto *m[MAX_SUBS] = {0};
    struct pollfd pfd[MAX_SUBS];
    struct subs s = {0};
    pid_t broker = -1, pub = -1;
    int port = free_port();
    double cpu0;
    FILE *f;

    memset(res, 0, sizeof(*res));
    if (sl <= 0 || !mkdtemp(dir))
        return -1;
    self[sl] = 0;
    snprintf(conf, sizeof(conf), "%s/mosquitto.conf", dir);
    f = fopen(conf, "w");
    if (!f)
        return -1;
    /* Loopback only, nothing written to disk, no limit on queued QoS 0 messages. */
    fprintf(f,
            "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 0\nlog_dest none\n",
            port);
    fclose(f);
    {
        char *args[] = {(char *)mosquitto, "-c", conf, NULL};
        broker = bu_spawn(args, NULL);
    }
    s.lat = malloc(MAX_LAT_SAMPLES * sizeof(*s.lat));
    if (broker < 0 || !s.lat)
        goto fail;
    bu_sleep_ms(300);
    for (unsigned i = 0; i < n_subs; i++) {
        char id[32];
        snprintf(id, sizeof(id), "bench-sub-%u", i);
        m[i] = mq.new_(id, true, &s);
        if (!m[i])
            goto fail;
        mq.message_cb(m[i], on_mqtt_message);
        mq.subscribe_cb(m[i], on_mqtt_subscribed);
        for (int tries = 0; mq.connect(m[i], "127.0.0.1", port, 60) != 0; tries++) {
            if (tries > 50)
                goto fail;
            bu_sleep_ms(100);
        }
        mq.subscribe(m[i], NULL, TOPIC, 0);
    }
    /* Until every SUBACK is in. */
    t0 = bu_mono_ns();
    while (s.subscribed < (int)n_subs && bu_mono_ns() - t0 < 5000000000ull) {
        for (unsigned i = 0; i < n_subs; i++) {
            mq.loop_write(m[i], 1);
            mq.loop_read(m[i], 1);
        }
        bu_sleep_ms(1);
    }
    if (s.subscribed < (int)n_subs)
        goto fail;
    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(cnt, sizeof(cnt), "%llu", (unsigned long long)count);
    snprintf(rate_s, sizeof(rate_s), "%u", rate);
    cpu0 = bu_proc_cpu_s(broker);
    {
        char *args[] = {self, "--publish-mqtt", port_s, rate_s, cnt, NULL};
        pub = bu_spawn(args, NULL);
    }
    t0 = last = bu_mono_ns();
    while (s.received < count * n_subs) {
        int n;
        for (unsigned i = 0; i < n_subs; i++)
            pfd[i] = (struct pollfd){.fd = mq.socket_(m[i]), .events = POLLIN};
        n = poll(pfd, n_subs, 10);
        for (unsigned i = 0; n > 0 && i < n_subs; i++)
            if (pfd[i].revents)
                mq.loop_read(m[i], 1);
        if (n > 0)
            last = bu_mono_ns();
        else if (bu_mono_ns() - t0 > (uint64_t)seconds * 1000000000u &&
                 bu_mono_ns() - last > DRAIN_MS * 1000000ull)
            break;
    }
    res->secs = (double)(last - t0) / 1e9;
    res->cpu = bu_proc_cpu_s(broker) - cpu0;
    res->ok = 1;
fail:
    for (unsigned i = 0; i < n_subs; i++)
        if (m[i]) {
            mq.disconnect(m[i]);
            mq.destroy(m[i]);
        }
    if (pub > 0)
        waitpid(pub, NULL, 0);
    if (broker > 0)
        bu_stop(broker, NULL);
    res->expected = count * n_subs;
    res->received = s.received;
    res->p50 = bu_pct_us(s.lat, s.n_lat, 50);
    res->p99 = bu_pct_us(s.lat, s.n_lat, 99);
    res->max = bu_pct_us(s.lat, s.n_lat, 100);
    free(s.lat);
    bu_rm_rf(dir);
    return res->ok ? 0 : -1;
}

static const char *find_mosquitto(void)
{
    static const char *const paths[] = {"/usr/sbin/mosquitto", "/usr/bin/mosquitto",
                                        "/usr/local/sbin/mosquitto"};
    const char *env = getenv("MOSQUITTO");
    if (env && access(env, X_OK) == 0)
        return env;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

static void print_row(const char *who, unsigned subs, unsigned rate, const struct result *r)
{
    double dps = r->cpu > 0 ? (double)r->received / r->cpu : 0;
    printf("%-9s %2u subs x %5u msg/s: %7llu/%-7llu delivered (%llu dropped), CPU %5.2f s ="
           " %7.0f deliveries/CPU-s (%.2f us each); latency p50 %.0f us, p99 %.0f us, max %.0f"
           " us\n",
           who, subs, rate, (unsigned long long)r->received, (unsigned long long)r->expected,
           (unsigned long long)r->dropped, r->cpu, dps, dps > 0 ? 1e6 / dps : 0, r->p50, r->p99,
           r->max);
}

int main(int argc, char **argv)
{
    unsigned seconds = 3;
    const char *mosq;
    struct result k, q;
    int have_mqtt;

    if (argc == 6 && strcmp(argv[1], "--serve-kpud") == 0)
        return serve_kpud(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]),
                          strtoull(argv[5], NULL, 10));
    if (argc == 5 && strcmp(argv[1], "--publish-mqtt") == 0)
        return publish_mqtt(atoi(argv[2]), (unsigned)atoi(argv[3]), strtoull(argv[4], NULL, 10));
    if (argc > 1)
        seconds = (unsigned)atoi(argv[1]);
    if (seconds == 0) {
        fprintf(stderr, "usage: %s [SECONDS]\n", argv[0]);
        return 2;
    }
    bu_print_load();
    signal(SIGPIPE, SIG_IGN);
    mosq = find_mosquitto();
    have_mqtt = mosq && load_mosquitto() == 0;
    if (!have_mqtt)
        printf("mosquitto or libmosquitto.so.1 not found: kpud figures only, no comparison "
               "(Debian: apt-get install mosquitto libmosquitto1; bench/run_ipc.sh does it)\n");
    printf("fan-out: %u s per configuration, DetectionEvent with %d boxes; CPU = the server "
           "process only\n",
           seconds, N_BOXES);
    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
        unsigned n = configs[i].subs, rate = configs[i].rate;
        if (kpu_side(n, rate, seconds, &k) < 0) {
            printf("kpud side failed at %u subscribers\n", n);
            continue;
        }
        print_row("kpud", n, rate, &k);
        if (!have_mqtt)
            continue;
        if (mqtt_side(mosq, n, rate, seconds, &q) < 0) {
            printf("mosquitto side failed at %u subscribers\n", n);
            continue;
        }
        print_row("mosquitto", n, rate, &q);
        if (k.cpu > 0 && q.cpu > 0)
            printf("  ratio kpud / mosquitto deliveries per CPU-second: %.1fx (goal >= 5x)\n",
                   ((double)k.received / k.cpu) / ((double)q.received / q.cpu));
    }
    printf("latency at %u clients x %u msg/s, %u s:\n", LAT_SUBS, LAT_RATE, 2 * seconds);
    if (kpu_side(LAT_SUBS, LAT_RATE, 2 * seconds, &k) == 0) {
        print_row("kpud", LAT_SUBS, LAT_RATE, &k);
        printf("  kpud p99 %.1f us (goal < 1000 us)\n", k.p99);
    }
    if (have_mqtt && mqtt_side(mosq, LAT_SUBS, LAT_RATE, 2 * seconds, &q) == 0) {
        print_row("mosquitto", LAT_SUBS, LAT_RATE, &q);
        printf("  ratio of p99 kpud / mosquitto: %.2f\n", q.p99 > 0 ? k.p99 / q.p99 : 0);
    }
    return 0;
}
