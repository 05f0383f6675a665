/* SPDX-License-Identifier: MIT */
/*
 * termios2 line settings (see tty_line.h).
 */
#include "tty_line.h"

#include <asm/ioctls.h>
#include <asm/termbits.h>
#include <errno.h>
#include <sys/ioctl.h>

int kpud_tty_set_line(int fd, uint32_t baud)
{
    struct termios2 tio;

    if (ioctl(fd, TCGETS2, &tio) < 0)
        return -errno;
    /* Raw 8N1, no flow control, no echo, no line discipline processing. */
    tio.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON |
                               IXOFF | IXANY);
    tio.c_oflag &= ~(tcflag_t)OPOST;
    tio.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    tio.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB | CRTSCTS | CBAUD);
    tio.c_cflag |= CS8 | CREAD | CLOCAL | BOTHER;
    tio.c_ispeed = baud;
    tio.c_ospeed = baud;
    /* VMIN 1: an empty non-blocking read fails with EAGAIN instead of returning 0, so 0
     * never has to be told apart from "no data". */
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    if (ioctl(fd, TCSETS2, &tio) < 0)
        return -errno;
    return 0;
}

void kpud_tty_flush(int fd)
{
    ioctl(fd, TCFLSH, TCIOFLUSH);
}

void kpud_tty_drain(int fd)
{
    ioctl(fd, TCSBRK, 1);
}
