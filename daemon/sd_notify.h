/* SPDX-License-Identifier: MIT */
/*
 * The two systemd interfaces kpud speaks, written here instead of linking libsystemd:
 *  - service notification: one datagram of "KEY=value" lines to the AF_UNIX socket named by
 *    $NOTIFY_SOCKET (sd_notify(3), "Notes"; a leading '@' names an abstract socket);
 *  - socket activation: listening sockets passed from fd 3 (SD_LISTEN_FDS_START) on, their
 *    count in $LISTEN_FDS, valid when $LISTEN_PID is our pid (sd_listen_fds(3)).
 * Both are stable, documented protocols (systemd's "interface portability and stability
 * promise"), so kpud needs no libsystemd at run time and runs the same under another init.
 * Without the variables every call is a cheap no-op.
 */
#ifndef KPUD_SD_NOTIFY_H
#define KPUD_SD_NOTIFY_H

#include <stdint.h>

/* First passed fd (sd_listen_fds(3): SD_LISTEN_FDS_START). */
#define KPUD_SD_LISTEN_FDS_START 3

/*
 * kpud_sd_notify - send state (one or more "KEY=value" lines, e.g. "READY=1\nSTATUS=ok")
 * to $NOTIFY_SOCKET. Returns 1 when sent, 0 when $NOTIFY_SOCKET is unset (nothing to do),
 * or a negative errno (bad socket name, send failure). Never blocks: the datagram is sent
 * with MSG_DONTWAIT, and a full queue is an error (-EAGAIN), not a wait.
 */
int kpud_sd_notify(const char *state);

/* kpud_sd_notifyf - kpud_sd_notify() of a printf-formatted state (at most 1 KiB). */
int kpud_sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * kpud_sd_watchdog_usec - the watchdog period systemd expects pings within: $WATCHDOG_USEC
 * when set, a positive number, and ($WATCHDOG_PID unset or equal to our pid). Returns the
 * period in microseconds, or 0 when there is no watchdog (or the values are malformed).
 */
uint64_t kpud_sd_watchdog_usec(void);

/*
 * kpud_sd_listen_fds - the number of sockets passed by socket activation: $LISTEN_FDS when
 * $LISTEN_PID is our pid, else 0. The fds are KPUD_SD_LISTEN_FDS_START.. and get
 * FD_CLOEXEC (children such as kpu-agent-sim must not inherit them). When unset_env is set
 * the three variables are removed so children do not see them. Returns the count (>= 0)
 * or a negative errno for malformed values.
 */
int kpud_sd_listen_fds(int unset_env);

/*
 * kpud_sd_listen_unix_fd - among the n passed fds, the listening AF_UNIX stream socket bound
 * to path; when none matches and exactly one listening AF_UNIX stream socket was passed,
 * that one (the socket unit then defines the path; *mismatch is set to 1 so the caller can
 * say so). Returns the fd, or -ENOENT when there is none.
 */
int kpud_sd_listen_unix_fd(int n, const char *path, int *mismatch);

#endif
