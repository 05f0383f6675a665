/* SPDX-License-Identifier: MIT */
/* kpuctl config get DEVICE | set DEVICE KEY=VALUE... [--persist]: detection settings of a
 * board. Keys: model, threshold, nms, max_boxes, fps_cap, roi=X,Y,W,H (or roi=none),
 * anchors=A,B,... (pairs). */
#include "kpuctl.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ANCHORS 20

static void print_config(const struct kpu_client_config *c)
{
    printf("device     %s\nmodel      %s\nthreshold  %.3g\nnms        %.3g\n", c->device, c->model,
           c->threshold, c->nms);
    printf("max_boxes  %u\nfps_cap    %u%s\n", c->max_boxes, c->fps_cap,
           c->fps_cap ? "" : " (unlimited)");
    if (c->has_roi)
        printf("roi        %u,%u,%u,%u\n", c->roi.x, c->roi.y, c->roi.w, c->roi.h);
    else
        printf("roi        none (whole frame)\n");
    printf("anchors   ");
    for (size_t i = 0; i < c->n_anchors; i++)
        printf(" %.4g", c->anchors[i]);
    printf("\n");
}

static int set_key(struct kpuctl *k, struct kpu_client_config *cfg, unsigned *fields,
                   float *anchors, const char *kv)
{
    const char *eq = strchr(kv, '=');
    char key[32];
    const char *v;

    if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key))
        return kpuctl_usage_error(k, "'%s' is not KEY=VALUE", kv);
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    v = eq + 1;
    if (strcmp(key, "model") == 0 && *v) {
        cfg->model = v;
        *fields |= KPU_CLIENT_CFG_MODEL;
    } else if (strcmp(key, "threshold") == 0 && kpuctl_parse_float(v, &cfg->threshold) == 0) {
        *fields |= KPU_CLIENT_CFG_THRESHOLD;
    } else if (strcmp(key, "nms") == 0 && kpuctl_parse_float(v, &cfg->nms) == 0) {
        *fields |= KPU_CLIENT_CFG_NMS;
    } else if (strcmp(key, "max_boxes") == 0 && kpuctl_parse_u32(v, &cfg->max_boxes) == 0) {
        *fields |= KPU_CLIENT_CFG_MAX_BOXES;
    } else if (strcmp(key, "fps_cap") == 0 && kpuctl_parse_u32(v, &cfg->fps_cap) == 0) {
        *fields |= KPU_CLIENT_CFG_FPS_CAP;
    } else if (strcmp(key, "roi") == 0 &&
               (strcmp(v, "none") == 0 || kpuctl_parse_rect(v, &cfg->roi) == 0)) {
        cfg->has_roi = strcmp(v, "none") != 0;
        *fields |= KPU_CLIENT_CFG_ROI;
    } else if (strcmp(key, "anchors") == 0) {
        char buf[512], *save = NULL, *tok;
        size_t n = 0;
        snprintf(buf, sizeof(buf), "%s", v);
        for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (n == MAX_ANCHORS || kpuctl_parse_float(tok, &anchors[n]) < 0)
                return kpuctl_usage_error(k, "anchors: up to %d numbers, comma-separated",
                                          MAX_ANCHORS);
            n++;
        }
        cfg->anchors = anchors;
        cfg->n_anchors = n;
        *fields |= KPU_CLIENT_CFG_ANCHORS;
    } else {
        return kpuctl_usage_error(k,
                                  "bad setting '%s' (keys: model, threshold, nms, max_boxes, "
                                  "fps_cap, roi, anchors)",
                                  kv);
    }
    return 0;
}

int cmd_config(struct kpuctl *k, int argc, char **argv)
{
    struct kpu_client_config *got = NULL, cfg;
    float anchors[MAX_ANCHORS];
    unsigned fields = 0;
    int persist = 0, r;

    if (argc < 3 || (strcmp(argv[1], "get") != 0 && strcmp(argv[1], "set") != 0))
        return kpuctl_usage_error(k, "needs get or set and a device");
    if (strcmp(argv[1], "get") == 0) {
        if (argc != 3)
            return kpuctl_usage_error(k, "get takes one device");
        r = kpuctl_connect(k);
        if (r)
            return r;
        r = kpu_client_config_get(k->client, argv[2], &got);
        if (r < 0)
            return kpuctl_fail(k, "reading the configuration", r);
    } else {
        memset(&cfg, 0, sizeof(cfg));
        cfg.device = argv[2];
        for (int i = 3; i < argc; i++) {
            if (strcmp(argv[i], "--persist") == 0)
                persist = 1;
            else if ((r = set_key(k, &cfg, &fields, anchors, argv[i])) != 0)
                return r;
        }
        if (!fields)
            return kpuctl_usage_error(k, "set needs at least one KEY=VALUE");
        r = kpuctl_connect(k);
        if (r)
            return r;
        r = kpu_client_config_set(k->client, &cfg, fields, persist, &got);
        if (r < 0)
            return kpuctl_fail(k, "changing the configuration", r);
    }
    if (k->json)
        r = kpuctl_print_reply_json(k);
    else
        print_config(got);
    kpu_client_free(got);
    return r;
}
