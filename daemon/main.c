/* SPDX-License-Identifier: MIT */
/*
 * kpud: arguments, configuration and logging set-up; then the loop does the rest.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "devices.h"
#include "log.h"
#include "loop.h"

enum {
    OPT_SIM = 1000,
    OPT_SIM_MODEL,
    OPT_SIM_MANIFEST,
    OPT_SIM_FPS,
    OPT_SIM_FAST,
    OPT_SIM_FAULT,
    OPT_SIM_SEED,
    OPT_SIM_AGENT,
    OPT_TTY,
    OPT_BAUD,
    OPT_REPLAY,
    OPT_REPLAY_SPEED,
    OPT_REPLAY_LOOP,
    OPT_REPLAY_EXIT,
    OPT_RECORD,
    OPT_STATE_DIR,
    OPT_SOCKET,
    OPT_DATABASE,
    OPT_THRESHOLD,
    OPT_LOG_LEVEL,
    OPT_USB,
    OPT_AGENT_BOOT,
    OPT_AGENT_IMAGE,
    OPT_ISP_BAUD,
    OPT_USB_GIVE_BACK,
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kpud [options]\n"
            "Serve detections from Kendryte K210 boards (or a simulated one) to local programs.\n"
            "\n"
            "  -c, --config FILE        configuration file (default " KPUD_DEFAULT_CONFIG ")\n"
            "      --state-dir DIR      database and captures (default /var/lib/kpud)\n"
            "      --socket PATH        client socket (default /run/kpud/kpud.sock, or\n"
            "                           $XDG_RUNTIME_DIR/kpud.sock when not root)\n"
            "      --database FILE      SQLite file (default STATE_DIR/kpud.db)\n"
            "      --threshold T        detection threshold 0..1 sent to every board\n"
            "devices:\n"
            "      --sim[=IMAGE|DIR]    a simulated board (kpu-agent-sim) looking at IMAGE or\n"
            "                           the images in DIR\n"
            "      --sim-model FILE     kmodel the simulated board runs\n"
            "      --sim-manifest FILE  its manifest (default: FILE.ini beside it, or built in)\n"
            "      --sim-fps N          simulated camera rate (default 30)\n"
            "      --sim-fast           no pacing: as fast as the emulated KPU goes\n"
            "      --sim-fault SPEC     fault injection, see kpu-agent-sim serve --help\n"
            "      --sim-seed N         chip uid seed of the simulated board\n"
            "      --sim-agent PATH     the kpu-agent-sim executable\n"
            "      --tty PATH           a board on a serial device (repeatable)\n"
            "      --baud N             serial rate (default 115200)\n"
            "      --replay FILE        play a recorded .kcap capture as a device\n"
            "      --replay-speed X     1 = recorded pace (default), 0 = as fast as possible\n"
            "      --replay-loop        start the capture again at its end\n"
            "      --replay-exit        stop kpud (storing everything) when the capture ends\n"
            "      --record FILE        record the first device's link to a .kcap file\n"
            "      --usb[=ALLOW]        boards on USB bridges (CH340, FT232, FT2232) through\n"
            "                           libusb; ALLOW e.g. 1a86:7523,usb:1-2* (default all)\n"
            "      --agent-boot MODE    none (default) or sram: load the agent into SRAM\n"
            "                           through the K210 ROM ISP when a usb board is opened\n"
            "      --agent-image FILE   the agent .bin for --agent-boot sram and for\n"
            "                           kpuctl agent boot|flash\n"
            "      --isp-baud N         ask the K210 ROM ISP for N baud after its greeting\n"
            "                           (kflash's stage-0 change; default: stay at 115200)\n"
            "      --usb-give-back-after DURATION\n"
            "                           give a usb port whose agent never answers HELLO back\n"
            "                           to its kernel driver after DURATION (30s, 500ms;\n"
            "                           default 30s, 0 = never)\n"
            "logging:\n"
            "  -v, --verbose            debug messages\n"
            "      --log-level LEVEL    error, warning, notice, info (default), debug\n"
            "  -V, --version            print the version and exit\n"
            "  -h, --help               this text\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop after the last batch is stored; SIGHUP re-reads the\n"
            "configuration file (detection parameters, log level).\n"
            "Exit status: 0 clean stop, 1 start-up failure, 2 usage error.\n");
}

static int bad_value(const char *opt, const char *v)
{
    fprintf(stderr, "kpud: invalid value for %s: '%s'\n", opt, v);
    return 2;
}

static int copy_arg(char *dst, size_t n, const char *v, const char *opt)
{
    if (strlen(v) >= n) {
        fprintf(stderr, "kpud: %s: value too long\n", opt);
        return -1;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"database", required_argument, NULL, OPT_DATABASE},
        {"threshold", required_argument, NULL, OPT_THRESHOLD},
        {"sim", optional_argument, NULL, OPT_SIM},
        {"sim-model", required_argument, NULL, OPT_SIM_MODEL},
        {"sim-manifest", required_argument, NULL, OPT_SIM_MANIFEST},
        {"sim-fps", required_argument, NULL, OPT_SIM_FPS},
        {"sim-fast", no_argument, NULL, OPT_SIM_FAST},
        {"sim-fault", required_argument, NULL, OPT_SIM_FAULT},
        {"sim-seed", required_argument, NULL, OPT_SIM_SEED},
        {"sim-agent", required_argument, NULL, OPT_SIM_AGENT},
        {"tty", required_argument, NULL, OPT_TTY},
        {"baud", required_argument, NULL, OPT_BAUD},
        {"replay", required_argument, NULL, OPT_REPLAY},
        {"replay-speed", required_argument, NULL, OPT_REPLAY_SPEED},
        {"replay-loop", no_argument, NULL, OPT_REPLAY_LOOP},
        {"replay-exit", no_argument, NULL, OPT_REPLAY_EXIT},
        {"record", required_argument, NULL, OPT_RECORD},
        {"usb", optional_argument, NULL, OPT_USB},
        {"agent-boot", required_argument, NULL, OPT_AGENT_BOOT},
        {"agent-image", required_argument, NULL, OPT_AGENT_IMAGE},
        {"isp-baud", required_argument, NULL, OPT_ISP_BAUD},
        {"usb-give-back-after", required_argument, NULL, OPT_USB_GIVE_BACK},
        {"verbose", no_argument, NULL, 'v'},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* Command-line values are applied after the file, so remember them first. */
    struct kpud_config cfg, cli;
    const char *config_path = NULL;
    char err[320];
    int c, r, log_level = -1;
    int set_state = 0, set_socket = 0, set_db = 0, set_threshold = 0, set_sim = 0;
    int set_agent_boot = 0, set_give_back = 0, set_isp_baud = 0;

    kpud_config_defaults(&cli);
    while ((c = getopt_long(argc, argv, "c:vVh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case OPT_STATE_DIR:
            if (copy_arg(cli.state_dir, sizeof(cli.state_dir), optarg, "--state-dir") < 0)
                return 2;
            set_state = 1;
            break;
        case OPT_SOCKET:
            if (copy_arg(cli.socket_path, sizeof(cli.socket_path), optarg, "--socket") < 0)
                return 2;
            set_socket = 1;
            break;
        case OPT_DATABASE:
            if (copy_arg(cli.database, sizeof(cli.database), optarg, "--database") < 0)
                return 2;
            set_db = 1;
            break;
        case OPT_THRESHOLD: {
            char *end;
            float t = strtof(optarg, &end);
            if (*end || end == optarg || !(t >= 0 && t <= 1))
                return bad_value("--threshold", optarg);
            cli.threshold = t;
            set_threshold = 1;
            break;
        }
        case OPT_SIM:
            set_sim = 1;
            cli.sim = 1;
            if (optarg && copy_arg(cli.sim_images, sizeof(cli.sim_images), optarg, "--sim") < 0)
                return 2;
            break;
        case OPT_SIM_MODEL:
            set_sim = 1;
            cli.sim = 1;
            if (copy_arg(cli.sim_model, sizeof(cli.sim_model), optarg, "--sim-model") < 0)
                return 2;
            break;
        case OPT_SIM_MANIFEST:
            if (copy_arg(cli.sim_manifest, sizeof(cli.sim_manifest), optarg, "--sim-manifest") < 0)
                return 2;
            break;
        case OPT_SIM_FPS: {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 1000)
                return bad_value("--sim-fps", optarg);
            cli.sim_fps = (uint32_t)v;
            break;
        }
        case OPT_SIM_FAST:
            cli.sim_fast = 1;
            break;
        case OPT_SIM_FAULT:
            if (copy_arg(cli.sim_faults, sizeof(cli.sim_faults), optarg, "--sim-fault") < 0)
                return 2;
            break;
        case OPT_SIM_SEED:
            if (copy_arg(cli.sim_seed, sizeof(cli.sim_seed), optarg, "--sim-seed") < 0)
                return 2;
            break;
        case OPT_SIM_AGENT:
            if (copy_arg(cli.sim_agent, sizeof(cli.sim_agent), optarg, "--sim-agent") < 0)
                return 2;
            break;
        case OPT_TTY:
            if (cli.n_ttys == KPUD_MAX_TTYS) {
                fprintf(stderr, "kpud: at most %d --tty\n", KPUD_MAX_TTYS);
                return 2;
            }
            if (copy_arg(cli.ttys[cli.n_ttys], sizeof(cli.ttys[0]), optarg, "--tty") < 0)
                return 2;
            cli.n_ttys++;
            break;
        case OPT_BAUD: {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || end == optarg || v < 300 || v > 4000000)
                return bad_value("--baud", optarg);
            cli.tty_baud = (uint32_t)v;
            break;
        }
        case OPT_REPLAY:
            if (copy_arg(cli.replay, sizeof(cli.replay), optarg, "--replay") < 0)
                return 2;
            break;
        case OPT_REPLAY_SPEED: {
            char *end;
            double v = strtod(optarg, &end);
            if (*end || end == optarg || !(v >= 0 && v <= 1000))
                return bad_value("--replay-speed", optarg);
            cli.replay_speed = v;
            break;
        }
        case OPT_REPLAY_LOOP:
            cli.replay_loop = 1;
            break;
        case OPT_REPLAY_EXIT:
            cli.replay_exit = 1;
            break;
        case OPT_RECORD:
            if (copy_arg(cli.record, sizeof(cli.record), optarg, "--record") < 0)
                return 2;
            break;
        case OPT_USB:
            cli.usb = 1;
            if (optarg && copy_arg(cli.usb_allow, sizeof(cli.usb_allow), optarg, "--usb") < 0)
                return 2;
            break;
        case OPT_AGENT_BOOT:
            if (!strcmp(optarg, "none"))
                cli.agent_boot = KPUD_AGENT_BOOT_NONE;
            else if (!strcmp(optarg, "sram"))
                cli.agent_boot = KPUD_AGENT_BOOT_SRAM;
            else
                return bad_value("--agent-boot", optarg);
            set_agent_boot = 1;
            break;
        case OPT_AGENT_IMAGE:
            if (copy_arg(cli.agent_image, sizeof(cli.agent_image), optarg, "--agent-image") < 0)
                return 2;
            break;
        case OPT_ISP_BAUD: {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || end == optarg || (v != 0 && (v < 9600 || v > 3000000)))
                return bad_value("--isp-baud", optarg);
            cli.usb_isp_baud = (uint32_t)v;
            set_isp_baud = 1;
            break;
        }
        case OPT_USB_GIVE_BACK:
            if (kpud_parse_duration_ms(optarg, KPUD_USB_GIVE_BACK_MAX_MS, &cli.usb_give_back_ms) <
                0)
                return bad_value("--usb-give-back-after", optarg);
            set_give_back = 1;
            break;
        case 'v':
            log_level = LOG_DEBUG;
            break;
        case OPT_LOG_LEVEL:
            log_level = kpud_log_parse_level(optarg);
            if (log_level < 0)
                return bad_value("--log-level", optarg);
            break;
        case 'V':
            printf("kpud %s\n", KPUD_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kpud: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    kpud_config_defaults(&cfg);
    r = kpud_config_load(&cfg, config_path ? config_path : KPUD_DEFAULT_CONFIG, err, sizeof(err));
    if (r == -ENOENT && config_path) {
        fprintf(stderr, "kpud: %s: no such file\n", config_path);
        return 1;
    }
    if (r < 0 && r != -ENOENT) {
        fprintf(stderr, "kpud: %s\n", err);
        return 1;
    }
    /* The command line wins over the file. */
    if (set_state)
        memcpy(cfg.state_dir, cli.state_dir, sizeof(cfg.state_dir));
    if (set_socket)
        memcpy(cfg.socket_path, cli.socket_path, sizeof(cfg.socket_path));
    if (set_db)
        memcpy(cfg.database, cli.database, sizeof(cfg.database));
    if (set_threshold)
        cfg.threshold = cli.threshold;
    if (set_sim) {
        cfg.sim = 1;
        if (cli.sim_images[0])
            memcpy(cfg.sim_images, cli.sim_images, sizeof(cfg.sim_images));
        if (cli.sim_model[0])
            memcpy(cfg.sim_model, cli.sim_model, sizeof(cfg.sim_model));
    }
    if (cli.sim_manifest[0])
        memcpy(cfg.sim_manifest, cli.sim_manifest, sizeof(cfg.sim_manifest));
    if (cli.sim_fps != 30)
        cfg.sim_fps = cli.sim_fps;
    if (cli.sim_fast)
        cfg.sim_fast = 1;
    if (cli.sim_faults[0])
        memcpy(cfg.sim_faults, cli.sim_faults, sizeof(cfg.sim_faults));
    if (cli.sim_seed[0])
        memcpy(cfg.sim_seed, cli.sim_seed, sizeof(cfg.sim_seed));
    if (cli.sim_agent[0])
        memcpy(cfg.sim_agent, cli.sim_agent, sizeof(cfg.sim_agent));
    if (cli.n_ttys) {
        memcpy(cfg.ttys, cli.ttys, sizeof(cfg.ttys));
        cfg.n_ttys = cli.n_ttys;
    }
    if (cli.tty_baud != 115200)
        cfg.tty_baud = cli.tty_baud;
    if (cli.replay[0]) {
        memcpy(cfg.replay, cli.replay, sizeof(cfg.replay));
        cfg.replay_speed = cli.replay_speed;
        cfg.replay_loop = cli.replay_loop;
        cfg.replay_exit = cli.replay_exit;
    }
    if (cli.record[0])
        memcpy(cfg.record, cli.record, sizeof(cfg.record));
    if (cli.usb) {
        cfg.usb = 1;
        if (cli.usb_allow[0])
            memcpy(cfg.usb_allow, cli.usb_allow, sizeof(cfg.usb_allow));
    }
    if (set_agent_boot)
        cfg.agent_boot = cli.agent_boot;
    if (set_give_back)
        cfg.usb_give_back_ms = cli.usb_give_back_ms;
    if (set_isp_baud)
        cfg.usb_isp_baud = cli.usb_isp_baud;
    if (cli.agent_image[0])
        memcpy(cfg.agent_image, cli.agent_image, sizeof(cfg.agent_image));
    if (log_level >= 0)
        cfg.log_level = log_level;
    kpud_config_finish(&cfg);
    kpud_log_set_level(cfg.log_level);
    kpud_devices_resolve_sim(&cfg);
    if (cfg.config_path[0])
        log_info("configuration %s", cfg.config_path);
    return kpud_loop_run(&cfg);
}
