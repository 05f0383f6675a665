/* SPDX-License-Identifier: MIT */
/*
 * The pure parts of the K210 camera path (hal/k210/k210_camera_pure.c and
 * k210_sensor_tables.c): the sensor tables are well formed (a bank selected before any
 * write, valid banks, no plain register written twice with different values in one bank,
 * repeats only on declared port/strobe registers, no write to the id register, sane
 * delays) and leave each sensor producing 320x240 RGB565 as the DVP wants it, decoded
 * from the register state a model of the sensor ends in; the player sends them in order
 * and stops at an error; SCCB and XCLK divisors; the DVP capture plan (dvp_cfg fields,
 * plane addresses, rejections); the capture buffer ring (one and two buffers, invariants
 * under random events); and the camera pins of every board profile.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k210_camera_pure.h"
#include "k210_pure.h"
#include "k210_regs.h"

#define BANKS_MAX 4

/* A register file per bank, filled by replaying a table. */
struct model {
    int bank;                  /* -1 until selected */
    int val[BANKS_MAX][256];   /* -1: never written */
    int plain[BANKS_MAX][256]; /* written by KFA_SCCB_W */
    char why[160];             /* first rule broken, empty if none */
};

static int is_seq_reg(const struct kfa_k210_sensor *s, uint8_t reg)
{
    for (size_t i = 0; i < s->nseq_regs; i++)
        if (s->seq_regs[i] == reg)
            return 1;
    return 0;
}

/* Replay s->init into m; returns 0, or -1 with m->why set at the first broken rule. */
static int replay(const struct kfa_k210_sensor *s, struct model *m)
{
    memset(m, 0, sizeof(*m));
    memset(m->val, -1, sizeof(m->val));
    m->bank = -1;
    for (size_t i = 0; i < s->ninit; i++) {
        const struct kfa_sccb_reg *e = &s->init[i];

        if (e->op == KFA_SCCB_DELAY) {
            if (e->val == 0 || e->val > KFA_SCCB_DELAY_MAX_MS) {
                snprintf(m->why, sizeof(m->why), "%s[%zu]: delay %u ms", s->name, i, e->val);
                return -1;
            }
            continue;
        }
        if (e->op != KFA_SCCB_W && e->op != KFA_SCCB_SEQ) {
            snprintf(m->why, sizeof(m->why), "%s[%zu]: op %u", s->name, i, e->op);
            return -1;
        }
        if (e->reg == s->bank_reg) {
            if ((e->val & s->bank_mask) >= s->nbanks) {
                snprintf(m->why, sizeof(m->why), "%s[%zu]: bank %u", s->name, i, e->val);
                return -1;
            }
            m->bank = e->val & s->bank_mask;
            continue;
        }
        if (m->bank < 0) {
            snprintf(m->why, sizeof(m->why), "%s[%zu]: write before a bank is selected", s->name,
                     i);
            return -1;
        }
        if (m->bank == s->id_bank && e->reg == s->id_reg) {
            snprintf(m->why, sizeof(m->why), "%s[%zu]: writes the id register", s->name, i);
            return -1;
        }
        if (e->op == KFA_SCCB_SEQ && !is_seq_reg(s, e->reg)) {
            snprintf(m->why, sizeof(m->why), "%s[%zu]: SEQ on 0x%02X, not a declared port", s->name,
                     i, e->reg);
            return -1;
        }
        if (e->op == KFA_SCCB_W && m->val[m->bank][e->reg] >= 0 &&
            m->val[m->bank][e->reg] != e->val) {
            snprintf(m->why, sizeof(m->why),
                     "%s[%zu]: bank %d reg 0x%02X rewritten 0x%02X -> 0x%02X", s->name, i, m->bank,
                     e->reg, m->val[m->bank][e->reg], e->val);
            return -1;
        }
        if (e->op == KFA_SCCB_W && m->plain[m->bank][e->reg]) {
            snprintf(m->why, sizeof(m->why), "%s[%zu]: bank %d reg 0x%02X written twice", s->name,
                     i, m->bank, e->reg);
            return -1;
        }
        if (e->op == KFA_SCCB_W)
            m->plain[m->bank][e->reg] = 1;
        m->val[m->bank][e->reg] = e->val;
    }
    return 0;
}

START_TEST(sensors_listed)
{
    ck_assert_uint_eq(kfa_k210_sensor_count(), 2);
    ck_assert_ptr_nonnull(kfa_k210_sensor_find(KFA_K210_SENSOR_OV2640));
    ck_assert_ptr_nonnull(kfa_k210_sensor_find(KFA_K210_SENSOR_GC0328));
    ck_assert_ptr_null(kfa_k210_sensor_find(0));
    ck_assert_ptr_null(kfa_k210_sensor_at(kfa_k210_sensor_count()));
    ck_assert_uint_ne(kfa_k210_sensor_find(KFA_K210_SENSOR_OV2640)->sccb_addr,
                      kfa_k210_sensor_find(KFA_K210_SENSOR_GC0328)->sccb_addr);
}
END_TEST

START_TEST(tables_well_formed)
{
    for (size_t k = 0; k < kfa_k210_sensor_count(); k++) {
        const struct kfa_k210_sensor *s = kfa_k210_sensor_at(k);
        struct model m;

        ck_assert_uint_gt(s->ninit, 0);
        ck_assert_uint_le(s->nbanks, BANKS_MAX);
        ck_assert_uint_le(s->nseq_regs, KFA_SENSOR_SEQ_REGS_MAX);
        ck_assert_msg(replay(s, &m) == 0, "%s", m.why);
        /* Every declared port register is used as one (no stale exemptions). */
        for (size_t j = 0; j < s->nseq_regs; j++) {
            int used = 0;

            ck_assert_uint_ne(s->seq_regs[j], s->bank_reg);
            for (size_t i = 0; i < s->ninit; i++)
                used |= s->init[i].op == KFA_SCCB_SEQ && s->init[i].reg == s->seq_regs[j];
            ck_assert_msg(used, "%s: seq reg 0x%02X never used", s->name, s->seq_regs[j]);
        }
    }
}
END_TEST

/* A table with a conflicting plain rewrite is caught (the checker itself can fail). */
START_TEST(checker_catches_conflicts)
{
    static const struct kfa_sccb_reg bad[] = {
        {KFA_SCCB_W, 0xFF, 0x00}, {KFA_SCCB_W, 0x10, 0x01}, {KFA_SCCB_W, 0x10, 0x02}};
    static const struct kfa_sccb_reg other_bank[] = {{KFA_SCCB_W, 0xFF, 0x00},
                                                     {KFA_SCCB_W, 0x10, 0x01},
                                                     {KFA_SCCB_W, 0xFF, 0x01},
                                                     {KFA_SCCB_W, 0x10, 0x02}};
    static const struct kfa_sccb_reg no_bank[] = {{KFA_SCCB_W, 0x10, 0x01}};
    static const struct kfa_sccb_reg undeclared_seq[] = {{KFA_SCCB_W, 0xFF, 0x00},
                                                         {KFA_SCCB_SEQ, 0x10, 0x01}};
    struct kfa_k210_sensor s = *kfa_k210_sensor_find(KFA_K210_SENSOR_OV2640);
    struct model m;

    s.init = bad;
    s.ninit = 3;
    ck_assert_int_eq(replay(&s, &m), -1);
    s.init = other_bank;
    s.ninit = 4;
    ck_assert_int_eq(replay(&s, &m), 0);
    s.init = no_bank;
    s.ninit = 1;
    ck_assert_int_eq(replay(&s, &m), -1);
    s.init = undeclared_seq;
    s.ninit = 2;
    ck_assert_int_eq(replay(&s, &m), -1);
}
END_TEST

START_TEST(ov2640_qvga_rgb565)
{
    const struct kfa_k210_sensor *s = kfa_k210_sensor_find(KFA_K210_SENSOR_OV2640);
    struct model m;
    int *dsp = m.val[0], *sens = m.val[1];
    uint32_t outw, outh;

    ck_assert_int_eq(replay(s, &m), 0);
    /* Register meanings: Linux drivers/media/i2c/ov2640.c. Output size ZMOW/ZMOH (size/4)
     * plus ZMHH bits 1:0 (width bits 11:10) and bit 2 (height bit 10). */
    outw = (uint32_t)dsp[0x5A] << 2 | ((uint32_t)dsp[0x5C] & 3u) << 10;
    outh = (uint32_t)dsp[0x5B] << 2 | ((uint32_t)dsp[0x5C] >> 2 & 1u) << 10;
    ck_assert_uint_eq(outw, s->width);
    ck_assert_uint_eq(outh, s->height);
    ck_assert_uint_eq(s->width, 320);
    ck_assert_uint_eq(s->height, 240);
    /* The zoom window (HSIZE/VSIZE, size/4) is at least the output; DSP input 8-aligned. */
    ck_assert_uint_ge((uint32_t)dsp[0x51] << 2, outw);
    ck_assert_uint_ge((uint32_t)dsp[0x52] << 2, outh);
    ck_assert_uint_eq((uint32_t)dsp[0xC0] << 3, (uint32_t)dsp[0x51] << 2);
    ck_assert_uint_eq((uint32_t)dsp[0xC1] << 3, (uint32_t)dsp[0x52] << 2);
    /* IMAGE_MODE: RGB565, not JPEG, high byte first; DSP not bypassed; DVP out of reset. */
    ck_assert_int_eq(dsp[0xDA] & 0x08, 0x08);
    ck_assert_int_eq(dsp[0xDA] & 0x10, 0);
    ck_assert_int_eq(dsp[0xDA] & 0x01, 0);
    ck_assert_int_eq(dsp[0x05], 0);
    ck_assert_int_eq(dsp[0xE0], 0);
    /* COM7 ends in a mode (SVGA), not in soft reset; the reset is followed by >= 5 ms. */
    ck_assert_int_eq(sens[0x12] & 0x80, 0);
    for (size_t i = 0; i + 1 < s->ninit; i++)
        if (s->init[i].reg == 0x12 && (s->init[i].val & 0x80) && s->init[i].op != KFA_SCCB_DELAY) {
            ck_assert_uint_eq(s->init[i + 1].op, KFA_SCCB_DELAY);
            ck_assert_uint_ge(s->init[i + 1].val, 5);
        }
}
END_TEST

START_TEST(gc0328_qvga_rgb565)
{
    const struct kfa_k210_sensor *s = kfa_k210_sensor_find(KFA_K210_SENSOR_GC0328);
    const uint32_t array_w = 640, array_h = 480; /* GC0328: VGA pixel array */
    struct model m;
    int *p0 = m.val[0], *p1 = m.val[1];

    ck_assert_int_eq(replay(s, &m), 0);
    /* Output format 0x44 bits 4:0 = 6: RGB565 (OpenMV gc0328_regs.h). */
    ck_assert_int_eq(p0[0x44] & 0x1F, 0x06);
    /* Crop mode on, subsample ratio per direction in the two nibbles of 0x59. */
    ck_assert_int_eq(p0[0x50] & 1, 1);
    ck_assert_int_gt(p0[0x59] >> 4, 0);
    ck_assert_int_gt(p0[0x59] & 0xF, 0);
    ck_assert_uint_eq(array_w / (uint32_t)(p0[0x59] & 0xF), s->width);
    ck_assert_uint_eq(array_h / (uint32_t)(p0[0x59] >> 4), s->height);
    /* Outputs on, AEC on, AWB on, ISP blocks on at the end. */
    ck_assert_int_eq(p0[0xF1], 0x07);
    ck_assert_int_eq(p0[0x4F] & 1, 1);
    ck_assert_int_eq(p1[0x50], 0x88);
    ck_assert_int_ne(p0[0x42], 0);
}
END_TEST

struct rec {
    int writes, delays, fail_at;
    uint32_t delay_ms;
    uint8_t addr;
    uint8_t reg[1024], val[1024];
};

static int rec_write(void *ctx, uint8_t addr, uint8_t reg, uint8_t val)
{
    struct rec *r = ctx;

    if (r->fail_at && r->writes + 1 == r->fail_at)
        return -7;
    r->addr = addr;
    r->reg[r->writes] = reg;
    r->val[r->writes] = val;
    r->writes++;
    return 0;
}

static void rec_delay(void *ctx, uint32_t ms)
{
    struct rec *r = ctx;

    r->delays++;
    r->delay_ms += ms;
}

START_TEST(player_sends_in_order)
{
    for (size_t k = 0; k < kfa_k210_sensor_count(); k++) {
        const struct kfa_k210_sensor *s = kfa_k210_sensor_at(k);
        struct rec *r = calloc(1, sizeof(*r));
        int n = 0, d = 0;
        uint32_t ms = 0;

        ck_assert_ptr_nonnull(r);
        ck_assert_uint_le(s->ninit, sizeof(r->reg));
        ck_assert_int_eq(kfa_k210_sensor_play(s, rec_write, rec_delay, r), 0);
        for (size_t i = 0; i < s->ninit; i++) {
            if (s->init[i].op == KFA_SCCB_DELAY) {
                d++;
                ms += s->init[i].val;
                continue;
            }
            ck_assert_uint_eq(r->reg[n], s->init[i].reg);
            ck_assert_uint_eq(r->val[n], s->init[i].val);
            n++;
        }
        ck_assert_int_eq(r->writes, n);
        ck_assert_int_eq(r->delays, d);
        ck_assert_uint_eq(r->delay_ms, ms);
        ck_assert_uint_eq(r->addr, s->sccb_addr);
        /* An error stops the table and comes back. */
        memset(r, 0, sizeof(*r));
        r->fail_at = 3;
        ck_assert_int_eq(kfa_k210_sensor_play(s, rec_write, rec_delay, r), -7);
        ck_assert_int_eq(r->writes, 2);
        free(r);
    }
}
END_TEST

START_TEST(sccb_divisor)
{
    /* 50 MHz APB1, 100 kHz: 250 cycles per half period, exactly 100 kHz. */
    ck_assert_uint_eq(kfa_k210_sccb_half_period(50000000u, 100000u), 250);
    ck_assert_uint_eq(kfa_k210_sccb_hz(50000000u, 250), 100000u);
    /* Never faster than asked while the 8-bit field suffices. */
    for (uint32_t apb = 1000000u; apb <= 50000000u; apb += 777777u) {
        uint32_t h = kfa_k210_sccb_half_period(apb, 100000u);

        ck_assert_uint_ge(h, 1);
        ck_assert_uint_le(h, 255);
        ck_assert_uint_le(kfa_k210_sccb_hz(apb, h), 100000u);
        ck_assert(h == 1 || kfa_k210_sccb_hz(apb, h - 1) > 100000u);
    }
    /* A fast APB1 clamps to 255 (the rate is then higher, and reported). */
    ck_assert_uint_eq(kfa_k210_sccb_half_period(201500000u, 100000u), 255);
    ck_assert_uint_gt(kfa_k210_sccb_hz(201500000u, 255), 100000u);
    ck_assert_uint_eq(kfa_k210_sccb_half_period(1000u, 100000u), 1);
    ck_assert_uint_eq(kfa_k210_sccb_half_period(50000000u, 0), 255);
    ck_assert_uint_eq(kfa_k210_sccb_hz(50000000u, 0), 0);
}
END_TEST

START_TEST(xclk_divisor)
{
    /* The DVP gives XCLK = APB1 / (2 * (div + 1)); the divisor chosen is the one whose
     * (div + 1) is nearest to APB1 / (2 * XCLK) (SDK dvp.c dvp_set_xclk_rate). */
    for (uint32_t apb = 50000000u; apb <= 400000000u; apb += 12345678u) {
        uint32_t div = kfa_k210_xclk_div(apb, 24000000u);
        double ideal = (double)apb / (2.0 * 24000000.0);

        ck_assert_uint_le(div, 255);
        ck_assert(abs((int)(div + 1) - (int)(ideal + 0.5)) == 0);
    }
    ck_assert_uint_eq(kfa_k210_xclk_div(48000000u, 24000000u), 0);  /* APB1 = 2 x XCLK */
    ck_assert_uint_eq(kfa_k210_xclk_div(20000000u, 24000000u), 0);  /* too slow: fastest */
    ck_assert_uint_eq(kfa_k210_xclk_div(400000000u, 100000u), 255); /* clamped */
    ck_assert_uint_eq(kfa_k210_xclk_div(400000000u, 0), 0);
}
END_TEST

START_TEST(dvp_plan_qvga)
{
    struct kfa_k210_dvp_plan p;
    const uintptr_t buf = 0x80123440u, rgb = 0x80200000u;

    ck_assert_int_eq(kfa_k210_dvp_plan(320, 240, buf, 320 * 240 * 3, 0, 0, &p), 0);
    ck_assert_uint_eq(p.plane, 76800);
    ck_assert_uint_eq(p.ai_bytes, 230400);
    ck_assert_uint_eq(p.rgb_bytes, 0);
    /* Uncached alias: 0x8xxxxxxx -> 0x4xxxxxxx; planes back to back. */
    ck_assert_uint_eq(p.r, buf - 0x40000000u);
    ck_assert_uint_eq(p.g, p.r + 76800u);
    ck_assert_uint_eq(p.b, p.g + 76800u);
    ck_assert_uint_eq(p.rgb, 0);
    /* dvp_cfg fields (dvp.h): href_burst_num 19:12 = 320 / 32, line_num 29:20 = 240,
     * 4-beat bursts, AI output, RGB format, no display output, no interrupts, no auto. */
    ck_assert_uint_eq(p.cfg >> 12 & 0xFFu, 10);
    ck_assert_uint_eq(p.cfg >> 20 & 0x3FFu, 240);
    ck_assert_uint_eq(p.cfg & 0x100u, 0x100u);
    ck_assert_uint_eq(p.cfg & 0x4u, 0x4u);
    ck_assert_uint_eq(p.cfg & 0x600u, 0);
    ck_assert_uint_eq(p.cfg & (0x8u | 0x1u | 0x2u | 0x10u), 0);
    /* With an RGB565 frame: display output on at its uncached address. */
    ck_assert_int_eq(kfa_k210_dvp_plan(320, 240, buf, 230400, rgb, 153600, &p), 0);
    ck_assert_uint_eq(p.rgb_bytes, 153600);
    ck_assert_uint_eq(p.rgb, rgb - 0x40000000u);
    ck_assert_uint_eq(p.cfg & 0x8u, 0x8u);
    /* An uncached address is taken as it is. */
    ck_assert_int_eq(kfa_k210_dvp_plan(320, 240, 0x40100000u, 230400, 0, 0, &p), 0);
    ck_assert_uint_eq(p.r, 0x40100000u);
    /* Other sizes: 640x480 (VGA) gives 20 bursts, 480 lines. */
    ck_assert_int_eq(kfa_k210_dvp_plan(640, 480, 0x80000000u, 640 * 480 * 3, 0, 0, &p), 0);
    ck_assert_uint_eq(p.cfg >> 12 & 0xFFu, 20);
    ck_assert_uint_eq(p.cfg >> 20 & 0x3FFu, 480);
}
END_TEST

START_TEST(dvp_plan_rejects)
{
    struct kfa_k210_dvp_plan p;
    const uintptr_t buf = 0x80100000u;

    memset(&p, 0x5A, sizeof(p));
    ck_assert_int_eq(kfa_k210_dvp_plan(100, 240, buf, 1 << 20, 0, 0, &p), -1); /* not 32n */
    ck_assert_int_eq(kfa_k210_dvp_plan(0, 240, buf, 1 << 20, 0, 0, &p), -1);
    ck_assert_int_eq(kfa_k210_dvp_plan(320, 0, buf, 1 << 20, 0, 0, &p), -1);
    ck_assert_int_eq(kfa_k210_dvp_plan(320, 1024, buf, 1 << 22, 0, 0, &p), -1);   /* 10 bits */
    ck_assert_int_eq(kfa_k210_dvp_plan(8192, 8, buf, 1 << 22, 0, 0, &p), -1);     /* 256 bursts */
    ck_assert_int_eq(kfa_k210_dvp_plan(320, 240, buf, 230399, 0, 0, &p), -1);     /* short */
    ck_assert_int_eq(kfa_k210_dvp_plan(320, 240, buf + 4, 230400, 0, 0, &p), -1); /* align */
    ck_assert_int_eq(kfa_k210_dvp_plan(320, 240, 0x1000u, 230400, 0, 0, &p), -1); /* not SRAM */
    ck_assert_int_eq(kfa_k210_dvp_plan(320, 240, 0x80800000u - 1024u, 230400, 0, 0, &p), -1);
    ck_assert_int_eq(kfa_k210_dvp_plan(320, 240, buf, 230400, 0x80200000u, 153599, &p), -1);
    ck_assert_int_eq(kfa_k210_dvp_plan(320, 240, buf, 230400, 0x80200002u, 153600, &p), -1);
    ck_assert_int_eq(kfa_k210_dvp_plan(320, 240, buf, 230400, 0x90000000u, 153600, &p), -1);
    /* *plan untouched on failure. */
    ck_assert_uint_eq(p.cfg, 0x5A5A5A5Au);
    /* The largest capture the fields allow. */
    ck_assert_int_eq(kfa_k210_dvp_plan(8160, 8, 0x80000000u, 8160 * 8 * 3, 0, 0, &p), 0);
    ck_assert_int_eq(kfa_k210_dvp_plan(32, 1023, 0x80000000u, 32 * 1023 * 3, 0, 0, &p), 0);
}
END_TEST

START_TEST(ring_one_buffer)
{
    struct kfa_k210_cam_ring r;

    ck_assert_int_eq(kfa_k210_cam_ring_init(&r, 0), -1);
    ck_assert_int_eq(kfa_k210_cam_ring_init(&r, KFA_K210_CAM_MAX_BUFS + 1), -1);
    ck_assert_int_eq(kfa_k210_cam_ring_init(&r, 1), 0);
    ck_assert_int_eq(kfa_k210_cam_ring_ready(&r), 0);
    ck_assert_int_eq(kfa_k210_cam_ring_take(&r), -1);
    ck_assert_int_eq(kfa_k210_cam_ring_finish(&r), -1); /* finish of a frame not captured */
    ck_assert_int_eq(kfa_k210_cam_ring_start(&r), 0);
    ck_assert_int_eq(kfa_k210_cam_ring_start(&r), 0); /* finish missed: restart it */
    ck_assert_uint_eq(r.lost, 1);
    ck_assert_int_eq(kfa_k210_cam_ring_take(&r), -1); /* still filling */
    ck_assert_int_eq(kfa_k210_cam_ring_finish(&r), 0);
    ck_assert_int_eq(kfa_k210_cam_ring_ready(&r), 1);
    ck_assert_int_eq(kfa_k210_cam_ring_start(&r), -1); /* the untaken frame is kept */
    ck_assert_int_eq(kfa_k210_cam_ring_take(&r), 0);
    ck_assert_int_eq(kfa_k210_cam_ring_ready(&r), 0);
    ck_assert_int_eq(kfa_k210_cam_ring_start(&r), -1); /* held */
    ck_assert_int_eq(kfa_k210_cam_ring_take(&r), -1);
    kfa_k210_cam_ring_release(&r);
    kfa_k210_cam_ring_release(&r); /* no-op */
    ck_assert_int_eq(kfa_k210_cam_ring_start(&r), 0);
    ck_assert_int_eq(kfa_k210_cam_ring_finish(&r), 0);
    ck_assert_uint_eq(r.captured, 2);
    ck_assert_uint_eq(r.skipped, 2);
    ck_assert_uint_eq(r.dropped, 0);
}
END_TEST

START_TEST(ring_two_buffers)
{
    struct kfa_k210_cam_ring r;
    int a, b;

    ck_assert_int_eq(kfa_k210_cam_ring_init(&r, 2), 0);
    a = kfa_k210_cam_ring_start(&r);
    ck_assert_int_ge(a, 0);
    ck_assert_int_eq(kfa_k210_cam_ring_finish(&r), a);
    ck_assert_int_eq(kfa_k210_cam_ring_take(&r), a);
    /* While the agent holds a, the DVP fills the other buffer. */
    b = kfa_k210_cam_ring_start(&r);
    ck_assert_int_ge(b, 0);
    ck_assert_int_ne(b, a);
    ck_assert_int_eq(kfa_k210_cam_ring_finish(&r), b);
    ck_assert_int_eq(kfa_k210_cam_ring_ready(&r), 0);  /* a still held */
    ck_assert_int_eq(kfa_k210_cam_ring_start(&r), -1); /* a held, b ready: skip */
    kfa_k210_cam_ring_release(&r);
    ck_assert_int_eq(kfa_k210_cam_ring_start(&r), a);
    ck_assert_int_eq(kfa_k210_cam_ring_finish(&r), a); /* newer than b: b dropped */
    ck_assert_uint_eq(r.dropped, 1);
    ck_assert_int_eq(kfa_k210_cam_ring_take(&r), a); /* the newest frame */
    ck_assert_int_eq(kfa_k210_cam_ring_start(&r), b);
}
END_TEST

START_TEST(ring_invariants)
{
    srand(12345);
    for (uint32_t n = 1; n <= KFA_K210_CAM_MAX_BUFS; n++) {
        struct kfa_k210_cam_ring r;
        int held = -1, ready = -1, filling = -1;
        uint32_t finishes = 0;

        ck_assert_int_eq(kfa_k210_cam_ring_init(&r, n), 0);
        for (int step = 0; step < 20000; step++) {
            int ev = rand() % 4, i, c[4] = {0};

            switch (ev) {
            case 0:
                i = kfa_k210_cam_ring_start(&r);
                if (i >= 0) {
                    ck_assert(i != held && i != ready);
                    filling = i;
                }
                break;
            case 1:
                i = kfa_k210_cam_ring_finish(&r);
                ck_assert_int_eq(i, filling);
                if (i >= 0) {
                    ready = i;
                    filling = -1;
                    finishes++;
                }
                break;
            case 2:
                i = kfa_k210_cam_ring_take(&r);
                if (i >= 0) {
                    ck_assert_int_eq(i, ready);
                    ck_assert_int_eq(held, -1);
                    held = i;
                    ready = -1;
                }
                break;
            default:
                kfa_k210_cam_ring_release(&r);
                held = -1;
                break;
            }
            for (uint32_t b = 0; b < n; b++)
                c[r.state[b]]++;
            ck_assert_int_le(c[KFA_CAM_FILLING], 1);
            ck_assert_int_le(c[KFA_CAM_READY], 1);
            ck_assert_int_le(c[KFA_CAM_HELD], 1);
            /* With two or more buffers a frame start never finds nothing free unless one
             * buffer is held and another ready. */
            if (n >= 2 && ev == 0 && filling < 0)
                ck_assert(held >= 0 && ready >= 0 && n == 2);
        }
        ck_assert_uint_eq(r.captured, finishes);
    }
}
END_TEST

START_TEST(camera_pins_on_every_board)
{
    static const uint32_t funcs[] = {FUNC_SCCB_SDA,  FUNC_SCCB_SCLK, FUNC_CMOS_XCLK,
                                     FUNC_CMOS_PCLK, FUNC_CMOS_HREF, FUNC_CMOS_VSYNC,
                                     FUNC_CMOS_RST,  FUNC_CMOS_PWDN};

    for (size_t i = 0; i < kfa_k210_board_count(); i++) {
        const struct kfa_k210_board *b = kfa_k210_board_at(i);

        /* Both sensors sit on the same FPC bus, so one pin set serves either. */
        for (size_t f = 0; f < sizeof(funcs) / sizeof(funcs[0]); f++) {
            int n = 0;

            for (size_t p = 0; p < b->npins; p++)
                n += b->pins[p].func == funcs[f];
            ck_assert_msg(n == 1, "%s: camera function %u mapped %d times", b->name, funcs[f], n);
        }
        ck_assert_msg(b->dvp_1v8, "%s: camera bank not at 1.8 V", b->name);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("k210_camera");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, sensors_listed);
    tcase_add_test(tc, tables_well_formed);
    tcase_add_test(tc, checker_catches_conflicts);
    tcase_add_test(tc, ov2640_qvga_rgb565);
    tcase_add_test(tc, gc0328_qvga_rgb565);
    tcase_add_test(tc, player_sends_in_order);
    tcase_add_test(tc, sccb_divisor);
    tcase_add_test(tc, xclk_divisor);
    tcase_add_test(tc, dvp_plan_qvga);
    tcase_add_test(tc, dvp_plan_rejects);
    tcase_add_test(tc, ring_one_buffer);
    tcase_add_test(tc, ring_two_buffers);
    tcase_add_test(tc, ring_invariants);
    tcase_add_test(tc, camera_pins_on_every_board);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
