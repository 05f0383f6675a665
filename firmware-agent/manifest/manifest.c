/* SPDX-License-Identifier: MIT */
/*
 * Model manifest parser on top of inih (Debian libinih-dev). The text is checked first
 * (size, NUL bytes, line length: inih would split an over-long line silently), then fed to
 * ini_parse_stream() one line at a time through a reader that counts lines, so every error
 * names its line; inih's own handler has no line number in Debian's build.
 */
#include "manifest.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#define INPUT_MAX_SIDE 4096u /* larger than any K210 input (KPU rows are 10 bits: 1024) */

enum key_id {
    K_NAME,
    K_KIND,
    K_SHA256,
    K_URL,
    K_WIDTH,
    K_HEIGHT,
    K_CHANNELS,
    K_FORMAT,
    K_FIT,
    K_RESIZE,
    K_FILL,
    K_OFFSET_X,
    K_OFFSET_Y,
    K_INVERT,
    K_INDEX,
    K_CLASSES,
    K_LABELS,
    K_ANCHORS,
    K_GRID_W,
    K_GRID_H,
    K_THRESHOLD,
    K_NMS,
    K_MAX_BOXES,
    K_TOP_K,
    K_SOFTMAX,
    K_COUNT
};

struct key_def {
    const char *section;
    const char *name;
    int list; /* a list value: repeated or continued lines append */
};

static const struct key_def keys[K_COUNT] = {
    [K_NAME] = {"model", "name", 0},
    [K_KIND] = {"model", "kind", 0},
    [K_SHA256] = {"model", "sha256", 0},
    [K_URL] = {"model", "url", 0},
    [K_WIDTH] = {"input", "width", 0},
    [K_HEIGHT] = {"input", "height", 0},
    [K_CHANNELS] = {"input", "channels", 0},
    [K_FORMAT] = {"input", "format", 0},
    [K_FIT] = {"input", "fit", 0},
    [K_RESIZE] = {"input", "resize", 0},
    [K_FILL] = {"input", "fill", 0},
    [K_OFFSET_X] = {"input", "offset_x", 0},
    [K_OFFSET_Y] = {"input", "offset_y", 0},
    [K_INVERT] = {"input", "invert", 0},
    [K_INDEX] = {"output", "index", 0},
    [K_CLASSES] = {"output", "classes", 0},
    [K_LABELS] = {"output", "labels", 1},
    [K_ANCHORS] = {"yolo2", "anchors", 1},
    [K_GRID_W] = {"yolo2", "grid_w", 0},
    [K_GRID_H] = {"yolo2", "grid_h", 0},
    [K_THRESHOLD] = {"yolo2", "threshold", 0},
    [K_NMS] = {"yolo2", "nms", 0},
    [K_MAX_BOXES] = {"yolo2", "max_boxes", 0},
    [K_TOP_K] = {"classifier", "top_k", 0},
    [K_SOFTMAX] = {"classifier", "softmax", 0},
};

struct parse_ctx {
    const char *text;
    size_t len;
    size_t pos;
    int line; /* line most recently handed to inih */
    const char *origin;
    struct kfa_manifest *m;
    struct kfa_manifest_error err; /* first error found by the handler */
    unsigned char seen[K_COUNT];
};

static void set_err(struct parse_ctx *c, int code, int line, const char *section, const char *name,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void set_err(struct parse_ctx *c, int code, int line, const char *section, const char *name,
                    const char *fmt, ...)
{
    char what[160];
    va_list ap;

    if (c->err.code)
        return; /* keep the first */
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    c->err.code = code;
    c->err.line = line;
    if (section && name)
        snprintf(c->err.key, sizeof(c->err.key), "%.20s.%.24s", section, name);
    else
        c->err.key[0] = '\0';
    if (line > 0 && section && name)
        snprintf(c->err.text, sizeof(c->err.text), "%.80s:%d: [%.20s] %.24s: %.100s", c->origin,
                 line, section, name, what);
    else if (line > 0)
        snprintf(c->err.text, sizeof(c->err.text), "%.80s:%d: %.150s", c->origin, line, what);
    else if (section && name)
        snprintf(c->err.text, sizeof(c->err.text), "%.80s: [%.20s] %.24s: %.100s", c->origin,
                 section, name, what);
    else
        snprintf(c->err.text, sizeof(c->err.text), "%.80s: %.150s", c->origin, what);
}

/* fgets-like reader over the checked text: exactly one line per call. */
static char *read_line(char *str, int num, void *stream)
{
    struct parse_ctx *c = stream;
    size_t n = 0;

    if (c->pos >= c->len || num < 2)
        return NULL;
    while (c->pos < c->len && n + 1 < (size_t)num) {
        char ch = c->text[c->pos++];
        str[n++] = ch;
        if (ch == '\n')
            break;
    }
    str[n] = '\0';
    c->line++;
    return str;
}

static int parse_u32(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    unsigned long x;

    if (!isdigit((unsigned char)v[0]))
        return -1;
    errno = 0;
    x = strtoul(v, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return -1;
    *out = (uint32_t)x;
    return 0;
}

static int parse_float(const char *v, float lo, float hi, float *out)
{
    char *end;
    float x;

    if (!*v)
        return -1;
    errno = 0;
    x = strtof(v, &end);
    if (errno || *end || !isfinite(x) || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int parse_offset(const char *v, int32_t *out)
{
    uint32_t x;

    if (!strcmp(v, "centre") || !strcmp(v, "center")) {
        *out = KFA_PREP_CENTRE;
        return 0;
    }
    if (parse_u32(v, 0, INPUT_MAX_SIDE, &x) < 0)
        return -1;
    *out = (int32_t)x;
    return 0;
}

static int copy_str(char *dst, size_t cap, const char *v)
{
    size_t n = strlen(v);

    if (n == 0 || n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return -1;
    memmove(dst, v, n + 1);
    return 0;
}

/* Trim spaces around [s, e) into out (cap bytes); -1 if empty or too long. */
static int trimmed_item(const char *s, const char *e, char *out, size_t cap)
{
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    if (s == e || (size_t)(e - s) >= cap)
        return -1;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    return 0;
}

/* Append comma-separated items of v; a trailing comma (continued list) is allowed. */
static int append_labels(struct parse_ctx *c, const char *section, const char *name, const char *v)
{
    struct kfa_manifest *m = c->m;
    const char *s = v;

    while (*s) {
        const char *e = strchr(s, ',');
        if (!e)
            e = s + strlen(s);
        if (*e == '\0' && s == e)
            break; /* nothing after a trailing comma */
        if (m->label_count >= KFA_MANIFEST_MAX_LABELS) {
            set_err(c, KFA_MANIFEST_E_VALUE, c->line, section, name, "more than %u labels",
                    KFA_MANIFEST_MAX_LABELS);
            return 0;
        }
        char *dst = m->labels[m->label_count];
        if (trimmed_item(s, e, dst, KFA_MANIFEST_LABEL_MAX) < 0 ||
            copy_str(dst, KFA_MANIFEST_LABEL_MAX, dst) < 0) {
            set_err(c, KFA_MANIFEST_E_VALUE, c->line, section, name,
                    "label %u is empty, longer than %u bytes or has control characters",
                    m->label_count, KFA_MANIFEST_LABEL_MAX - 1);
            return 0;
        }
        m->label_count++;
        s = *e ? e + 1 : e;
    }
    return 1;
}

static int append_anchors(struct parse_ctx *c, const char *section, const char *name, const char *v)
{
    struct kfa_manifest *m = c->m;
    const char *s = v;

    while (*s) {
        const char *e = strchr(s, ',');
        if (!e)
            e = s + strlen(s);
        char item[32];
        float f;
        if (*e == '\0' && s == e)
            break;
        if (trimmed_item(s, e, item, sizeof(item)) < 0) {
            set_err(c, KFA_MANIFEST_E_VALUE, c->line, section, name, "empty anchor value");
            return 0;
        }
        /* Anchors are in grid cells: positive and well below any grid size. */
        if (parse_float(item, 1e-6f, 1e4f, &f) < 0) {
            set_err(c, KFA_MANIFEST_E_VALUE, c->line, section, name,
                    "'%.31s' is not a positive number", item);
            return 0;
        }
        if (m->anchor_count >= 2 * KFA_YOLO2_MAX_ANCHORS) { /* counts values here */
            set_err(c, KFA_MANIFEST_E_VALUE, c->line, section, name, "more than %u anchors",
                    KFA_YOLO2_MAX_ANCHORS);
            return 0;
        }
        m->anchors[m->anchor_count++] = f;
        s = *e ? e + 1 : e;
    }
    return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *c = user;
    struct kfa_manifest *m = c->m;
    int id, bad = 0;
    uint32_t u;

    for (id = 0; id < K_COUNT; id++)
        if (!strcmp(keys[id].section, section) && !strcmp(keys[id].name, name))
            break;
    if (id == K_COUNT) {
        int known_section = 0;
        for (int i = 0; i < K_COUNT; i++)
            known_section |= !strcmp(keys[i].section, section);
        if (!known_section)
            set_err(c, KFA_MANIFEST_E_SYNTAX, c->line, NULL, NULL, "unknown section [%.40s]",
                    section);
        else
            set_err(c, KFA_MANIFEST_E_SYNTAX, c->line, section, name, "unknown key");
        return 0;
    }
    if (c->seen[id] && !keys[id].list) {
        set_err(c, KFA_MANIFEST_E_SYNTAX, c->line, section, name, "given twice");
        return 0;
    }
    c->seen[id] = 1;

    switch ((enum key_id)id) {
    case K_NAME:
        bad = copy_str(m->name, sizeof(m->name), value);
        break;
    case K_KIND:
        if (!strcmp(value, "yolo2"))
            m->kind = KFA_MODEL_YOLO2;
        else if (!strcmp(value, "classifier"))
            m->kind = KFA_MODEL_CLASSIFIER;
        else
            bad = -1;
        break;
    case K_SHA256:
        if (strlen(value) != 64) {
            bad = -1;
            break;
        }
        for (int i = 0; i < 64; i++) {
            char ch = (char)tolower((unsigned char)value[i]);
            if (!isxdigit((unsigned char)ch))
                bad = -1;
            m->sha256[i] = ch;
        }
        m->sha256[64] = '\0';
        break;
    case K_URL:
        bad = copy_str(m->url, sizeof(m->url), value);
        break;
    case K_WIDTH:
        bad = parse_u32(value, 1, INPUT_MAX_SIDE, &m->input_w);
        break;
    case K_HEIGHT:
        bad = parse_u32(value, 1, INPUT_MAX_SIDE, &m->input_h);
        break;
    case K_CHANNELS:
        bad = parse_u32(value, 1, INPUT_MAX_SIDE, &m->input_c);
        break;
    case K_FORMAT:
        if (!strcmp(value, "u8"))
            m->input_kind = KFA_MANIFEST_INPUT_U8;
        else if (!strcmp(value, "float"))
            m->input_kind = KFA_MANIFEST_INPUT_F32;
        else
            bad = -1;
        break;
    case K_FIT:
        if (!strcmp(value, "stretch"))
            m->fit = KFA_FIT_STRETCH;
        else if (!strcmp(value, "letterbox"))
            m->fit = KFA_FIT_LETTERBOX;
        else
            bad = -1;
        break;
    case K_RESIZE:
        if (!strcmp(value, "bilinear"))
            m->filter = KFA_FILTER_BILINEAR;
        else if (!strcmp(value, "nearest"))
            m->filter = KFA_FILTER_NEAREST;
        else
            bad = -1;
        break;
    case K_FILL:
        bad = parse_u32(value, 0, 255, &u);
        m->fill = (uint8_t)u;
        break;
    case K_OFFSET_X:
        bad = parse_offset(value, &m->offset_x);
        break;
    case K_OFFSET_Y:
        bad = parse_offset(value, &m->offset_y);
        break;
    case K_INVERT:
        bad = parse_bool(value, &m->invert);
        break;
    case K_INDEX:
        bad = parse_u32(value, 0, 255, &m->output_index);
        break;
    case K_CLASSES:
        bad = parse_u32(value, 1, 65536, &m->class_count);
        break;
    case K_LABELS:
        return append_labels(c, section, name, value);
    case K_ANCHORS:
        return append_anchors(c, section, name, value);
    case K_GRID_W:
        bad = parse_u32(value, 1, INPUT_MAX_SIDE, &m->grid_w);
        break;
    case K_GRID_H:
        bad = parse_u32(value, 1, INPUT_MAX_SIDE, &m->grid_h);
        break;
    case K_THRESHOLD:
        bad = parse_float(value, 0.0f, 1.0f, &m->threshold);
        break;
    case K_NMS:
        bad = parse_float(value, 0.0f, 1.0f, &m->nms);
        break;
    case K_MAX_BOXES:
        bad = parse_u32(value, 1, 65536, &m->max_boxes);
        break;
    case K_TOP_K:
        bad = parse_u32(value, 1, 65536, &m->top_k);
        break;
    case K_SOFTMAX:
        bad = parse_bool(value, &m->softmax);
        break;
    case K_COUNT:
        break;
    }
    if (bad) {
        set_err(c, KFA_MANIFEST_E_VALUE, c->line, section, name, "bad value '%.48s'", value);
        return 0;
    }
    return 1;
}

static void set_defaults(struct kfa_manifest *m)
{
    memset(m, 0, sizeof(*m));
    m->fit = KFA_FIT_STRETCH;
    m->filter = KFA_FILTER_BILINEAR;
    m->offset_x = KFA_PREP_CENTRE;
    m->offset_y = KFA_PREP_CENTRE;
    m->threshold = 0.5f; /* MaixPy demos (kmodel-facts §7 "Typical parameters") */
    m->nms = 0.3f;
    m->max_boxes = 10; /* MaixPy's obj_info_t holds 10 objects (kmodel-facts §7 item 7) */
    m->top_k = 1;
}

/* Cross-key checks once everything is read. */
static void validate(struct parse_ctx *c)
{
    struct kfa_manifest *m = c->m;
    static const int required[] = {K_NAME, K_KIND, K_WIDTH, K_HEIGHT, K_CHANNELS};

    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (!c->seen[required[i]]) {
            set_err(c, KFA_MANIFEST_E_MISSING, 0, keys[required[i]].section, keys[required[i]].name,
                    "required key missing");
            return;
        }
    if (m->input_kind == KFA_MANIFEST_INPUT_U8 && m->input_c != 1 && m->input_c != 3) {
        set_err(c, KFA_MANIFEST_E_VALUE, 0, "input", "channels",
                "a u8 image input has 1 (grey) or 3 (RGB) channels, not %u", m->input_c);
        return;
    }
    if (m->class_count && m->label_count && m->label_count != m->class_count) {
        set_err(c, KFA_MANIFEST_E_MISSING, 0, "output", "labels", "%u labels for %u classes",
                m->label_count, m->class_count);
        return;
    }
    if (m->kind == KFA_MODEL_YOLO2) {
        if (m->input_kind != KFA_MANIFEST_INPUT_U8) {
            set_err(c, KFA_MANIFEST_E_VALUE, 0, "input", "format",
                    "a yolo2 model takes a u8 image");
            return;
        }
        if (!c->seen[K_CLASSES]) {
            set_err(c, KFA_MANIFEST_E_MISSING, 0, "output", "classes", "required for kind = yolo2");
            return;
        }
        if (m->anchor_count == 0 || m->anchor_count % 2) {
            set_err(c, KFA_MANIFEST_E_MISSING, 0, "yolo2", "anchors",
                    "need w, h pairs (got %u values)", m->anchor_count);
            return;
        }
        m->anchor_count /= 2; /* from values to pairs */
        if ((m->grid_w == 0) != (m->grid_h == 0)) {
            set_err(c, KFA_MANIFEST_E_MISSING, 0, "yolo2", "grid_w",
                    "give both grid_w and grid_h, or neither");
            return;
        }
    } else {
        if (c->seen[K_ANCHORS] || c->seen[K_GRID_W] || c->seen[K_GRID_H] || c->seen[K_THRESHOLD] ||
            c->seen[K_NMS] || c->seen[K_MAX_BOXES]) {
            set_err(c, KFA_MANIFEST_E_MISSING, 0, "yolo2", "*",
                    "a [yolo2] section needs kind = yolo2");
            return;
        }
        m->anchor_count = 0;
    }
    if (m->kind != KFA_MODEL_CLASSIFIER && (c->seen[K_TOP_K] || c->seen[K_SOFTMAX]))
        set_err(c, KFA_MANIFEST_E_MISSING, 0, "classifier", "*",
                "a [classifier] section needs kind = classifier");
}

int kfa_manifest_parse_string(const char *text, size_t len, const char *origin,
                              struct kfa_manifest *m, struct kfa_manifest_error *err)
{
    struct parse_ctx c;
    size_t line_len = 0;
    int line = 1, r;

    memset(&c, 0, sizeof(c));
    c.origin = origin ? origin : "<string>";
    if (!m || (!text && len)) {
        set_err(&c, KFA_MANIFEST_E_VALUE, 0, NULL, NULL, "invalid argument");
        goto out;
    }
    set_defaults(m);
    c.text = text;
    c.len = len;
    c.m = m;
    if (len > KFA_MANIFEST_MAX_BYTES) {
        set_err(&c, KFA_MANIFEST_E_SYNTAX, 0, NULL, NULL, "larger than %u bytes",
                KFA_MANIFEST_MAX_BYTES);
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\0') {
            set_err(&c, KFA_MANIFEST_E_SYNTAX, line, NULL, NULL, "NUL byte in text");
            goto out;
        }
        if (text[i] == '\n') {
            line++;
            line_len = 0;
        } else if (++line_len > KFA_MANIFEST_MAX_LINE) {
            set_err(&c, KFA_MANIFEST_E_SYNTAX, line, NULL, NULL,
                    "line longer than %u bytes (continue lists on indented lines)",
                    KFA_MANIFEST_MAX_LINE);
            goto out;
        }
    }
    r = ini_parse_stream(read_line, &c, handler, &c);
    if (r > 0 && (!c.err.code || r < c.err.line)) {
        c.err.code = 0;
        set_err(&c, KFA_MANIFEST_E_SYNTAX, r, NULL, NULL,
                "not 'key = value' or '[section]' (INI syntax)");
    } else if (r < 0 && !c.err.code) {
        set_err(&c, KFA_MANIFEST_E_IO, 0, NULL, NULL, "inih failed (%d)", r);
    }
    if (!c.err.code)
        validate(&c);
out:
    if (err)
        *err = c.err;
    return c.err.code;
}

int kfa_manifest_load(const char *path, struct kfa_manifest *m, struct kfa_manifest_error *err)
{
    char *buf;
    FILE *f;
    size_t n;
    int r;

    f = path ? fopen(path, "rb") : NULL;
    if (!f) {
        if (err) {
            memset(err, 0, sizeof(*err));
            err->code = KFA_MANIFEST_E_IO;
            snprintf(err->text, sizeof(err->text), "%.200s: %s", path ? path : "(null)",
                     strerror(errno));
        }
        return KFA_MANIFEST_E_IO;
    }
    buf = malloc(KFA_MANIFEST_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        if (err) {
            memset(err, 0, sizeof(*err));
            err->code = KFA_MANIFEST_E_IO;
            snprintf(err->text, sizeof(err->text), "%.200s: out of memory", path);
        }
        return KFA_MANIFEST_E_IO;
    }
    n = fread(buf, 1, KFA_MANIFEST_MAX_BYTES + 1, f);
    r = ferror(f);
    fclose(f);
    if (r) {
        free(buf);
        if (err) {
            memset(err, 0, sizeof(*err));
            err->code = KFA_MANIFEST_E_IO;
            snprintf(err->text, sizeof(err->text), "%.200s: read error", path);
        }
        return KFA_MANIFEST_E_IO;
    }
    /* n > KFA_MANIFEST_MAX_BYTES means too large; parse_string reports it. */
    r = kfa_manifest_parse_string(buf, n, path, m, err);
    free(buf);
    return r;
}

const char *kfa_manifest_label(const struct kfa_manifest *m, uint32_t id)
{
    if (!m || id >= m->label_count || id >= KFA_MANIFEST_MAX_LABELS)
        return NULL;
    return m->labels[id];
}

const char *kfa_model_kind_name(enum kfa_model_kind kind)
{
    switch (kind) {
    case KFA_MODEL_YOLO2:
        return "yolo2";
    case KFA_MODEL_CLASSIFIER:
        return "classifier";
    default:
        return "unknown";
    }
}
