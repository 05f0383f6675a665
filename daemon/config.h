/* SPDX-License-Identifier: MIT */
/*
 * kpud configuration: defaults, the INI file (/etc/kpud/kpud.conf, parsed with inih) and
 * command-line overrides. docs/kpud.conf.md lists every key; packaging/kpud.conf carries
 * them commented with their defaults.
 */
#ifndef KPUD_CONFIG_H
#define KPUD_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define KPUD_DEFAULT_CONFIG "/etc/kpud/kpud.conf"
#define KPUD_MAX_TTYS 8

struct kpud_config {
    /* [daemon] */
    char state_dir[PATH_MAX];   /* state_dir: database, captures; default /var/lib/kpud */
    char socket_path[PATH_MAX]; /* socket: default /run/kpud/kpud.sock (root) or
                                   $XDG_RUNTIME_DIR/kpud.sock */
    int log_level;              /* log_level: error|warning|notice|info|debug */

    /* [detect]: what every board is asked to run */
    char model[32];     /* model: stored model name, "" = the agent's current */
    float threshold;    /* threshold: 0..1, default 0.5 */
    float nms;          /* nms: 0..1, default 0.3 */
    uint32_t max_boxes; /* max_boxes: 1..32, default 10 */
    uint32_t fps_cap;   /* fps_cap: 0 = unlimited */

    /* [store] */
    char database[PATH_MAX];      /* database: default <state_dir>/kpud.db */
    uint32_t batch_ms;            /* batch_ms: default 50 */
    uint64_t retention_max_age_s; /* retention_max_age: 30d, 12h, 0 = forever */
    uint64_t retention_max_bytes; /* retention_max_bytes: 1G, 500M, 0 = unbounded */

    /* [ipc] */
    char reader_group[64];   /* reader_group: default "kpu"; "" = anyone */
    char admin_group[64];    /* admin_group: default "kpu-admin" */
    uint32_t max_clients;    /* max_clients: default 64 */
    uint32_t queue_messages; /* queue_messages: per client, default 1024 */

    /* [sim] */
    int sim;                     /* enabled: yes|no */
    char sim_agent[PATH_MAX];    /* agent: kpu-agent-sim path, "" = find it */
    char sim_images[PATH_MAX];   /* images: an image file or a folder */
    char sim_model[PATH_MAX];    /* model: kmodel file */
    char sim_manifest[PATH_MAX]; /* manifest: its manifest, "" = next to it or built in */
    uint32_t sim_fps;            /* fps: default 30 */
    int sim_fast;                /* fast: yes = as fast as possible */
    char sim_faults[256];        /* faults: passed to kpu-agent-sim --fault */
    char sim_seed[64];           /* seed: chip uid seed */

    /* [tty] */
    char ttys[KPUD_MAX_TTYS][PATH_MAX]; /* devices: comma-separated paths */
    int n_ttys;
    uint32_t tty_baud; /* baud: default 115200 */

    /* [usb]: boards found by VID/PID through libusb (daemon/link/transport_usb.h) */
    int usb;                    /* enabled: yes|no (default no; --usb) */
    char usb_allow[512];        /* allow: "1a86:7523, 0403:*, usb:1-2*"; "" = every bridge */
    char usb_deny[512];         /* deny: same syntax, wins over allow */
    uint32_t usb_baud;          /* baud: default 115200 */
    uint32_t usb_isp_baud;      /* isp_baud: 0 (default) = the ROM ISP stays at 115200 */
    char usb_reset_profile[16]; /* reset_profile: auto|dan|kd233|goE|goD */
    int usb_interface;          /* interface: auto (-1, every port) | 0 (A) | 1 (B) on
                                   two-port bridges */
    uint32_t usb_give_back_ms;  /* give_back_after: a port whose agent never answers HELLO
                                   this long is given back to its kernel driver; default
                                   30s, 0 = never (KPUD_USB_GIVE_BACK_MAX_MS at most) */
    int agent_boot;             /* agent_boot: none (0) | sram (1) | flash (2) */
    char agent_image[PATH_MAX]; /* agent_image: the K210 agent .bin loaded through the ISP */

    /* [replay] */
    char replay[PATH_MAX]; /* file: a .kcap capture to play as a device */
    double replay_speed;   /* speed: 1 = recorded pace, 0 = as fast as possible */
    int replay_loop;       /* loop: yes|no */
    int replay_exit;       /* command line only: stop kpud when the capture ends */

    /* command line only */
    char record[PATH_MAX];      /* --record FILE: capture the first device's link */
    char config_path[PATH_MAX]; /* the file read, "" if none */
};

#define KPUD_USB_GIVE_BACK_DEFAULT_MS 30000u
#define KPUD_USB_GIVE_BACK_MAX_MS (24u * 3600u * 1000u) /* a day: beyond that, say 0 */

#define KPUD_AGENT_BOOT_NONE 0
#define KPUD_AGENT_BOOT_SRAM 1
#define KPUD_AGENT_BOOT_FLASH 2

/* kpud_config_defaults - fill cfg with the built-in defaults (socket path depends on uid). */
void kpud_config_defaults(struct kpud_config *cfg);

/*
 * kpud_config_load - read an INI file over cfg. Unknown sections or keys and bad values
 * are errors. Returns 0; -ENOENT if the file does not exist (not an error for the default
 * path); -EINVAL with a "file:line: message" in err (errlen bytes) otherwise.
 */
int kpud_config_load(struct kpud_config *cfg, const char *path, char *err, size_t errlen);

/* kpud_config_finish - derive what depends on other keys (database path). */
void kpud_config_finish(struct kpud_config *cfg);

/* kpud_parse_duration - "30d", "12h", "15m", "45s", "0" -> seconds. Returns 0 or -EINVAL. */
int kpud_parse_duration(const char *s, uint64_t *out_s);

/*
 * kpud_parse_duration_ms - "30s", "500ms", "2m", "1h", "0", or a bare number of seconds ->
 * milliseconds, at most max_ms. Returns 0, -EINVAL for a malformed value or -ERANGE for
 * one above max_ms.
 */
int kpud_parse_duration_ms(const char *s, uint32_t max_ms, uint32_t *out_ms);

/* kpud_parse_size - "1G", "500M", "64K", "1024" -> bytes. Returns 0 or -EINVAL. */
int kpud_parse_size(const char *s, uint64_t *out_bytes);

#endif
