/* SPDX-License-Identifier: MIT */
/*
 * Serial line settings through termios2 (any baud rate, BOTHER). Kept apart from the
 * libuv code because <asm/termbits.h> and <termios.h> (which uv.h includes) cannot meet
 * in one file.
 */
#ifndef KPUD_TTY_LINE_H
#define KPUD_TTY_LINE_H

#include <stdint.h>

/* kpud_tty_set_line - raw 8N1, no flow control, at baud. Returns 0 or a negative errno
 * (-ENOTTY for something that is not a tty). */
int kpud_tty_set_line(int fd, uint32_t baud);

/* kpud_tty_flush - discard what the kernel buffered in both directions. */
void kpud_tty_flush(int fd);

/* kpud_tty_drain - wait until queued output is sent (blocks briefly: at most the kernel's
 * output buffer at the current rate). */
void kpud_tty_drain(int fd);

#endif
