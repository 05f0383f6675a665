/* SPDX-License-Identifier: MIT */
/*
 * kpud configuration file and defaults (see config.h).
 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

void kpud_config_defaults(struct kpud_config *cfg)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");

    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->state_dir, sizeof(cfg->state_dir), "/var/lib/kpud");
    if (geteuid() != 0 && xdg && *xdg)
        snprintf(cfg->socket_path, sizeof(cfg->socket_path), "%s/kpud.sock", xdg);
    else
        snprintf(cfg->socket_path, sizeof(cfg->socket_path), "/run/kpud/kpud.sock");
    cfg->log_level = LOG_INFO;
    cfg->threshold = 0.5f;
    cfg->nms = 0.3f;
    cfg->max_boxes = 10;
    cfg->batch_ms = 50;
    cfg->retention_max_age_s = 30ull * 24 * 3600;
    snprintf(cfg->reader_group, sizeof(cfg->reader_group), "kpu");
    snprintf(cfg->admin_group, sizeof(cfg->admin_group), "kpu-admin");
    cfg->max_clients = 64;
    cfg->queue_messages = 1024;
    cfg->sim_fps = 30;
    cfg->tty_baud = 115200;
    cfg->replay_speed = 1.0;
    cfg->usb_baud = 115200;
    cfg->usb_interface = -1;
    cfg->usb_give_back_ms = KPUD_USB_GIVE_BACK_DEFAULT_MS;
    snprintf(cfg->usb_reset_profile, sizeof(cfg->usb_reset_profile), "auto");
}

void kpud_config_finish(struct kpud_config *cfg)
{
    if (!cfg->database[0])
        snprintf(cfg->database, sizeof(cfg->database), "%.*s/kpud.db", PATH_MAX - 10,
                 cfg->state_dir);
}

int kpud_parse_duration(const char *s, uint64_t *out_s)
{
    char *end;
    unsigned long long v;
    uint64_t mul = 1;

    errno = 0;
    if (!*s || *s == '-')
        return -EINVAL;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    if (*end) {
        switch (*end) {
        case 's':
            mul = 1;
            break;
        case 'm':
            mul = 60;
            break;
        case 'h':
            mul = 3600;
            break;
        case 'd':
            mul = 86400;
            break;
        case 'w':
            mul = 7 * 86400;
            break;
        default:
            return -EINVAL;
        }
        if (end[1])
            return -EINVAL;
    }
    if (v > UINT64_MAX / mul)
        return -EINVAL;
    *out_s = v * mul;
    return 0;
}

int kpud_parse_duration_ms(const char *s, uint32_t max_ms, uint32_t *out_ms)
{
    char *end;
    unsigned long long v;
    uint64_t mul = 1000;

    errno = 0;
    if (!s || *s < '0' || *s > '9')
        return -EINVAL; /* no sign, no blank, no empty value */
    v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (errno || end == s)
        return -EINVAL;
    if (!strcmp(end, "ms"))
        mul = 1;
    else if (!strcmp(end, "s") || !*end)
        mul = 1000;
    else if (!strcmp(end, "m"))
        mul = 60 * 1000;
    else if (!strcmp(end, "h"))
        mul = 3600 * 1000;
    else
        return -EINVAL;
    if (v > max_ms / mul)
        return -ERANGE;
    *out_ms = (uint32_t)(v * mul);
    return 0;
}

int kpud_parse_size(const char *s, uint64_t *out_bytes)
{
    char *end;
    unsigned long long v;
    uint64_t mul = 1;

    errno = 0;
    if (!*s || *s == '-')
        return -EINVAL;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    if (*end) {
        switch (*end) {
        case 'K':
        case 'k':
            mul = 1024ull;
            break;
        case 'M':
            mul = 1024ull * 1024;
            break;
        case 'G':
            mul = 1024ull * 1024 * 1024;
            break;
        case 'T':
            mul = 1024ull * 1024 * 1024 * 1024;
            break;
        default:
            return -EINVAL;
        }
        if (end[1] && !(end[1] == 'B' && !end[2]) && !(end[1] == 'i' && end[2] == 'B' && !end[3]))
            return -EINVAL;
    }
    if (v > UINT64_MAX / mul)
        return -EINVAL;
    *out_bytes = v * mul;
    return 0;
}

struct load_ctx {
    struct kpud_config *cfg;
    char err[256];
    const char *path;
};

static int parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "on"))
        *out = 1;
    else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0") ||
             !strcasecmp(v, "off"))
        *out = 0;
    else
        return -EINVAL;
    return 0;
}

static int parse_u32(const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    unsigned long n;
    errno = 0;
    if (*v == '-')
        return -EINVAL;
    n = strtoul(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max)
        return -EINVAL;
    *out = (uint32_t)n;
    return 0;
}

static int parse_unit_float(const char *v, float *out)
{
    char *end;
    float f;
    errno = 0;
    f = strtof(v, &end);
    if (errno || end == v || *end || !(f >= 0.0f && f <= 1.0f))
        return -EINVAL;
    *out = f;
    return 0;
}

static int copy_str(char *dst, size_t n, const char *v)
{
    if (strlen(v) >= n)
        return -ENAMETOOLONG;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

#define COPY(field) copy_str(c->field, sizeof(c->field), v)

static int set_key(struct kpud_config *c, const char *sec, const char *k, const char *v)
{
    if (!strcmp(sec, "daemon")) {
        if (!strcmp(k, "state_dir"))
            return COPY(state_dir);
        if (!strcmp(k, "socket"))
            return COPY(socket_path);
        if (!strcmp(k, "log_level")) {
            int l = kpud_log_parse_level(v);
            if (l < 0)
                return -EINVAL;
            c->log_level = l;
            return 0;
        }
    } else if (!strcmp(sec, "detect")) {
        if (!strcmp(k, "model"))
            return COPY(model);
        if (!strcmp(k, "threshold"))
            return parse_unit_float(v, &c->threshold);
        if (!strcmp(k, "nms"))
            return parse_unit_float(v, &c->nms);
        if (!strcmp(k, "max_boxes"))
            return parse_u32(v, 1, 32, &c->max_boxes);
        if (!strcmp(k, "fps_cap"))
            return parse_u32(v, 0, 1000, &c->fps_cap);
    } else if (!strcmp(sec, "store")) {
        if (!strcmp(k, "database"))
            return COPY(database);
        if (!strcmp(k, "batch_ms"))
            return parse_u32(v, 1, 10000, &c->batch_ms);
        if (!strcmp(k, "retention_max_age"))
            return kpud_parse_duration(v, &c->retention_max_age_s);
        if (!strcmp(k, "retention_max_bytes"))
            return kpud_parse_size(v, &c->retention_max_bytes);
    } else if (!strcmp(sec, "ipc")) {
        if (!strcmp(k, "reader_group"))
            return COPY(reader_group);
        if (!strcmp(k, "admin_group"))
            return COPY(admin_group);
        if (!strcmp(k, "max_clients"))
            return parse_u32(v, 1, 4096, &c->max_clients);
        if (!strcmp(k, "queue_messages"))
            return parse_u32(v, 16, 1u << 20, &c->queue_messages);
    } else if (!strcmp(sec, "sim")) {
        if (!strcmp(k, "enabled"))
            return parse_bool(v, &c->sim);
        if (!strcmp(k, "agent"))
            return COPY(sim_agent);
        if (!strcmp(k, "images"))
            return COPY(sim_images);
        if (!strcmp(k, "model"))
            return COPY(sim_model);
        if (!strcmp(k, "manifest"))
            return COPY(sim_manifest);
        if (!strcmp(k, "fps"))
            return parse_u32(v, 1, 1000, &c->sim_fps);
        if (!strcmp(k, "fast"))
            return parse_bool(v, &c->sim_fast);
        if (!strcmp(k, "faults"))
            return COPY(sim_faults);
        if (!strcmp(k, "seed"))
            return COPY(sim_seed);
    } else if (!strcmp(sec, "tty")) {
        if (!strcmp(k, "devices")) {
            char buf[4096], *save = NULL, *tok;
            if (copy_str(buf, sizeof(buf), v) < 0)
                return -ENAMETOOLONG;
            c->n_ttys = 0;
            for (tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
                if (c->n_ttys == KPUD_MAX_TTYS)
                    return -E2BIG;
                if (copy_str(c->ttys[c->n_ttys], sizeof(c->ttys[0]), tok) < 0)
                    return -ENAMETOOLONG;
                c->n_ttys++;
            }
            return 0;
        }
        if (!strcmp(k, "baud"))
            return parse_u32(v, 300, 4000000, &c->tty_baud);
    } else if (!strcmp(sec, "usb")) {
        if (!strcmp(k, "enabled"))
            return parse_bool(v, &c->usb);
        if (!strcmp(k, "allow"))
            return COPY(usb_allow);
        if (!strcmp(k, "deny"))
            return COPY(usb_deny);
        if (!strcmp(k, "baud"))
            return parse_u32(v, 300, 3000000, &c->usb_baud);
        if (!strcmp(k, "isp_baud"))
            return strcmp(v, "0") == 0 ? (c->usb_isp_baud = 0, 0)
                                       : parse_u32(v, 9600, 3000000, &c->usb_isp_baud);
        if (!strcmp(k, "reset_profile")) {
            if (strcmp(v, "auto") && strcmp(v, "dan") && strcmp(v, "kd233") && strcmp(v, "goE") &&
                strcmp(v, "goD"))
                return -EINVAL;
            return COPY(usb_reset_profile);
        }
        if (!strcmp(k, "interface")) {
            if (!strcmp(v, "auto"))
                c->usb_interface = -1;
            else if (!strcmp(v, "0") || !strcasecmp(v, "A"))
                c->usb_interface = 0;
            else if (!strcmp(v, "1") || !strcasecmp(v, "B"))
                c->usb_interface = 1;
            else
                return -EINVAL;
            return 0;
        }
        if (!strcmp(k, "give_back_after")) {
            int r = kpud_parse_duration_ms(v, KPUD_USB_GIVE_BACK_MAX_MS, &c->usb_give_back_ms);
            return r == -EINVAL ? -EDOM : r;
        }
        if (!strcmp(k, "agent_boot")) {
            if (!strcmp(v, "none"))
                c->agent_boot = KPUD_AGENT_BOOT_NONE;
            else if (!strcmp(v, "sram"))
                c->agent_boot = KPUD_AGENT_BOOT_SRAM;
            else if (!strcmp(v, "flash"))
                c->agent_boot = KPUD_AGENT_BOOT_FLASH;
            else
                return -EINVAL;
            return 0;
        }
        if (!strcmp(k, "agent_image"))
            return COPY(agent_image);
    } else if (!strcmp(sec, "replay")) {
        if (!strcmp(k, "file"))
            return COPY(replay);
        if (!strcmp(k, "speed")) {
            char *end;
            double d = strtod(v, &end);
            if (end == v || *end || !(d >= 0 && d <= 1000))
                return -EINVAL;
            c->replay_speed = d;
            return 0;
        }
        if (!strcmp(k, "loop"))
            return parse_bool(v, &c->replay_loop);
    } else {
        return -ENOENT - 1000; /* unknown section */
    }
    return -ENOENT;
}

static int config_ini_line(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *ctx = user;
    int r;

    if (ctx->err[0])
        return 0;
    if (!name)
        return 1; /* a section header alone (inih INI_CALL_HANDLER_ON_NEW_SECTION) */
    r = set_key(ctx->cfg, section, name, value);
    if (r == 0)
        return 1;
    if (r == -ENOENT - 1000)
        snprintf(ctx->err, sizeof(ctx->err), "unknown section [%s]", section);
    else if (r == -ENOENT)
        snprintf(ctx->err, sizeof(ctx->err), "[%s] unknown key '%s'", section, name);
    else if (r == -ENAMETOOLONG)
        snprintf(ctx->err, sizeof(ctx->err), "[%s] %s: value too long", section, name);
    else if (r == -EDOM)
        snprintf(ctx->err, sizeof(ctx->err),
                 "[%s] %s: invalid value '%s' (a duration such as 30s, 500ms, 2m; 0 = never)",
                 section, name, value);
    else if (r == -ERANGE)
        snprintf(ctx->err, sizeof(ctx->err), "[%s] %s: '%s' is too long (at most 24h; 0 = never)",
                 section, name, value);
    else
        snprintf(ctx->err, sizeof(ctx->err), "[%s] %s: invalid value '%s'", section, name, value);
    return 0;
}

int kpud_config_load(struct kpud_config *cfg, const char *path, char *err, size_t errlen)
{
    struct load_ctx ctx = {.cfg = cfg, .path = path};
    FILE *f = fopen(path, "r");
    int r;

    if (!f) {
        if (errno == ENOENT)
            return -ENOENT;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -EINVAL;
    }
    r = ini_parse_file(f, config_ini_line, &ctx);
    fclose(f);
    if (r != 0) {
        if (ctx.err[0])
            snprintf(err, errlen, "%s:%d: %s", path, r, ctx.err);
        else
            snprintf(err, errlen, "%s:%d: syntax error", path, r);
        return -EINVAL;
    }
    snprintf(cfg->config_path, sizeof(cfg->config_path), "%s", path);
    return 0;
}
