/* SPDX-License-Identifier: MIT */
/*
 * The agent's reader of model manifests (docs/models.md): only the keys the pipeline
 * needs, in a small freestanding INI scanner, since the host's full parser
 * (firmware-agent/manifest/, inih) is not part of the firmware. The host validated the
 * manifest before upload, so keys this reader does not use are skipped.
 */
#include "agent_int.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define LINE_MAX_LEN 200u /* manifest.h: KFA_MANIFEST_MAX_LINE (196) + slack */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Trim [*s, *e) of blanks. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_space(**s))
        (*s)++;
    while (*e > *s && is_space((*e)[-1]))
        (*e)--;
}

static int parse_u32(const char *v, uint32_t max, uint32_t *out)
{
    char *end;
    unsigned long x = strtoul(v, &end, 10);

    if (end == v || *end || x > max || v[0] == '-')
        return -1;
    *out = (uint32_t)x;
    return 0;
}

static int parse_unit(const char *v, float *out)
{
    char *end;
    float x = strtof(v, &end);

    if (end == v || *end || !(x >= 0.0f && x <= 1.0f))
        return -1;
    *out = x;
    return 0;
}

static int parse_yes(const char *v, int *out)
{
    if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = 1;
    else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

static int parse_anchors(const char *v, struct kfa_model_params *p)
{
    uint32_t n = 0;

    while (*v) {
        char *end;
        float x;

        while (*v == ' ' || *v == ',' || *v == '\t')
            v++;
        if (!*v)
            break;
        x = strtof(v, &end);
        if (end == v || !(x > 0.0f && x <= 1000.0f) || n >= 2u * KFA_YOLO2_MAX_ANCHORS)
            return -1;
        p->anchors[n++] = x;
        v = end;
    }
    if (n % 2u)
        return -1;
    p->anchor_count = n / 2u;
    return 0;
}

static int apply(struct kfa_model_params *p, const char *sec, const char *key, const char *v)
{
    uint32_t u;

    if (strcmp(sec, "model") == 0 && strcmp(key, "kind") == 0) {
        p->kind = strcmp(v, "yolo2") == 0 ? 1 : strcmp(v, "classifier") == 0 ? 2 : 0;
        return 0;
    }
    if (strcmp(sec, "input") == 0) {
        if (strcmp(key, "fit") == 0) {
            if (strcmp(v, "stretch") == 0)
                p->fit = KFA_FIT_STRETCH;
            else if (strcmp(v, "letterbox") == 0)
                p->fit = KFA_FIT_LETTERBOX;
            else
                return -1;
        } else if (strcmp(key, "resize") == 0) {
            if (strcmp(v, "bilinear") == 0)
                p->filter = KFA_FILTER_BILINEAR;
            else if (strcmp(v, "nearest") == 0)
                p->filter = KFA_FILTER_NEAREST;
            else
                return -1;
        } else if (strcmp(key, "fill") == 0) {
            if (parse_u32(v, 255, &u) != 0)
                return -1;
            p->fill = (uint8_t)u;
        } else if (strcmp(key, "invert") == 0) {
            return parse_yes(v, &p->invert);
        }
        return 0;
    }
    if (strcmp(sec, "output") == 0) {
        if (strcmp(key, "index") == 0)
            return parse_u32(v, KFA_KMODEL_MAX_OUTPUTS - 1u, &p->output_index);
        if (strcmp(key, "classes") == 0)
            return parse_u32(v, 1000, &p->class_count);
        return 0;
    }
    if (strcmp(sec, "yolo2") == 0) {
        if (strcmp(key, "anchors") == 0)
            return parse_anchors(v, p);
        if (strcmp(key, "grid_w") == 0)
            return parse_u32(v, 1024, &p->grid_w);
        if (strcmp(key, "grid_h") == 0)
            return parse_u32(v, 1024, &p->grid_h);
        if (strcmp(key, "threshold") == 0)
            return parse_unit(v, &p->threshold);
        if (strcmp(key, "nms") == 0)
            return parse_unit(v, &p->nms);
        if (strcmp(key, "max_boxes") == 0)
            return parse_u32(v, 32, &p->max_boxes);
    }
    return 0;
}

/* Apply one complete key = value; -1 (with why) on a bad value. */
static int finish(struct kfa_model_params *p, const char *sec, const char *key, const char *val,
                  unsigned line, char *why, size_t cap)
{
    if (!key[0])
        return 0;
    if (apply(p, sec, key, val) != 0) {
        kfa_fmt(why, cap, "line %u: [%s] %s: bad value", line, sec, key);
        return -1;
    }
    return 0;
}

int kfa_params_parse(const char *text, size_t len, struct kfa_model_params *p, char *why,
                     size_t cap)
{
    const char *s = text, *end = text + len;
    char sec[16] = "", key[24] = "", val[2 * LINE_MAX_LEN] = "";
    unsigned line = 0, key_line = 0;

    memset(p, 0, sizeof(*p));
    /* manifest.h defaults: threshold 0.5, nms 0.3, max_boxes 10 (MaixPy's) */
    p->threshold = 0.5f;
    p->nms = 0.3f;
    p->max_boxes = 10;
    p->fit = KFA_FIT_STRETCH;
    p->filter = KFA_FILTER_BILINEAR;
    p->have_manifest = len > 0;
    while (s < end) {
        const char *e = memchr(s, '\n', (size_t)(end - s));
        const char *ls = s, *le = e ? e : end, *eqs;
        int indented = ls < le && (*ls == ' ' || *ls == '\t');

        s = e ? e + 1 : end;
        line++;
        trim(&ls, &le);
        if (ls == le || *ls == ';' || *ls == '#')
            continue;
        /* An indented line continues the previous value (inih's multi-line values). */
        if (indented && key[0]) {
            size_t have = strlen(val), add = (size_t)(le - ls);

            if (have + 1 + add >= sizeof(val)) {
                kfa_fmt(why, cap, "line %u: value too long", line);
                return -1;
            }
            val[have] = ' ';
            memcpy(val + have + 1, ls, add);
            val[have + 1 + add] = '\0';
            continue;
        }
        if (finish(p, sec, key, val, key_line, why, cap) != 0)
            return -1;
        key[0] = '\0';
        if (*ls == '[') {
            sec[0] = '\0';
            if (le[-1] == ']' && (size_t)(le - ls - 2) < sizeof(sec)) {
                memcpy(sec, ls + 1, (size_t)(le - ls - 2));
                sec[le - ls - 2] = '\0';
            }
            continue;
        }
        eqs = memchr(ls, '=', (size_t)(le - ls));
        if (!eqs)
            continue;
        {
            const char *ks = ls, *ke = eqs, *vs = eqs + 1, *ve = le;

            trim(&ks, &ke);
            trim(&vs, &ve);
            if ((size_t)(ke - ks) >= sizeof(key) || (size_t)(ve - vs) >= sizeof(val) || ks == ke)
                continue;
            memcpy(key, ks, (size_t)(ke - ks));
            key[ke - ks] = '\0';
            memcpy(val, vs, (size_t)(ve - vs));
            val[ve - vs] = '\0';
            key_line = line;
        }
    }
    return finish(p, sec, key, val, key_line, why, cap);
}
