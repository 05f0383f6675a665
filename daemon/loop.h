/* SPDX-License-Identifier: MIT */
/*
 * The daemon's event loop: the one place that knows how the modules are wired (store,
 * devices, IPC server, signals, timers).
 */
#ifndef KPUD_LOOP_H
#define KPUD_LOOP_H

#include "config.h"

/*
 * kpud_loop_run - run the daemon with cfg until SIGTERM or SIGINT. SIGHUP re-reads
 * cfg->config_path and applies what can change at run time. Returns the process exit
 * status (0 after a clean shutdown, 1 if start-up failed; the reason is logged).
 */
int kpud_loop_run(struct kpud_config *cfg);

#endif
