/* SPDX-License-Identifier: MIT */
/*
 * sd_notify and socket activation for kpud without libsystemd (see sd_notify.h for the
 * protocol references).
 */
#include "sd_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NOTIFY_MAX 1024 /* bytes of one formatted state; kpud's longest STATUS is ~100 */

int kpud_sd_notify(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    struct msghdr mh;
    struct iovec iov;
    socklen_t salen;
    size_t n;
    ssize_t w;
    int fd, err;

    if (!state)
        return -EINVAL;
    if (!name || !*name)
        return 0;
    n = strlen(name);
    /* sd_notify(3): an absolute path, or '@' for the abstract namespace. */
    if ((name[0] != '/' && name[0] != '@') || n >= sizeof(sa.sun_path) || n < 2)
        return -EINVAL;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@')
        sa.sun_path[0] = 0;
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (name[0] == '/')
        salen++; /* the path's terminating NUL */

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&mh, 0, sizeof(mh));
    iov.iov_base = (void *)state;
    iov.iov_len = strlen(state);
    mh.msg_name = &sa;
    mh.msg_namelen = salen;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    err = errno;
    close(fd);
    if (w < 0)
        return -err;
    return (size_t)w == iov.iov_len ? 1 : -EMSGSIZE;
}

int kpud_sd_notifyf(const char *fmt, ...)
{
    char buf[NOTIFY_MAX];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= sizeof(buf))
        return -EMSGSIZE;
    return kpud_sd_notify(buf);
}

/* A decimal that fits in unsigned long long with nothing after it; 0 or -EINVAL. */
static int parse_ull(const char *s, unsigned long long *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+')
        return -EINVAL;
    errno = 0;
    *out = strtoull(s, &end, 10);
    if (errno || *end)
        return -EINVAL;
    return 0;
}

/* 1 if the variable is unset or names our pid, 0 if another process's, -EINVAL if bad. */
static int pid_is_ours(const char *var)
{
    const char *v = getenv(var);
    unsigned long long pid;

    if (!v)
        return 1;
    if (parse_ull(v, &pid) < 0)
        return -EINVAL;
    return pid == (unsigned long long)getpid();
}

uint64_t kpud_sd_watchdog_usec(void)
{
    unsigned long long us;

    if (pid_is_ours("WATCHDOG_PID") != 1)
        return 0;
    if (parse_ull(getenv("WATCHDOG_USEC"), &us) < 0 || us == 0)
        return 0;
    return us;
}

int kpud_sd_listen_fds(int unset_env)
{
    unsigned long long n = 0;
    const char *pid = getenv("LISTEN_PID");
    int r = 0;

    /* sd_listen_fds(3): LISTEN_PID must be set and be ours; otherwise the fds are not for us. */
    if (!pid || pid_is_ours("LISTEN_PID") != 1)
        goto out;
    if (parse_ull(getenv("LISTEN_FDS"), &n) < 0 || n > 1024) {
        r = -EINVAL;
        goto out;
    }
    for (unsigned long long i = 0; i < n; i++) {
        int fd = KPUD_SD_LISTEN_FDS_START + (int)i;
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0) {
            r = -errno;
            goto out;
        }
        if (!(flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
            r = -errno;
            goto out;
        }
    }
    r = (int)n;
out:
    if (unset_env) {
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
    }
    return r;
}

/* 1 if fd is a listening AF_UNIX stream socket; its bound path in path (cap bytes). */
static int unix_listener(int fd, char *path, size_t cap)
{
    struct sockaddr_un sa;
    socklen_t len = sizeof(sa);
    int type = 0, acc = 0;
    socklen_t ol = sizeof(type);
    size_t plen;

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ol) < 0 || type != SOCK_STREAM)
        return 0;
    ol = sizeof(acc);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &ol) < 0 || !acc)
        return 0;
    memset(&sa, 0, sizeof(sa));
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 || sa.sun_family != AF_UNIX)
        return 0;
    path[0] = 0;
    if (len > offsetof(struct sockaddr_un, sun_path) && sa.sun_path[0]) {
        plen = strnlen(sa.sun_path, len - offsetof(struct sockaddr_un, sun_path));
        if (plen < cap) {
            memcpy(path, sa.sun_path, plen);
            path[plen] = 0;
        }
    }
    return 1;
}

int kpud_sd_listen_unix_fd(int n, const char *path, int *mismatch)
{
    char bound[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    int only = -ENOENT, count = 0;

    if (mismatch)
        *mismatch = 0;
    for (int i = 0; i < n; i++) {
        int fd = KPUD_SD_LISTEN_FDS_START + i;
        if (!unix_listener(fd, bound, sizeof(bound)))
            continue;
        if (path && !strcmp(bound, path))
            return fd;
        only = fd;
        count++;
    }
    if (count == 1) {
        if (mismatch)
            *mismatch = 1;
        return only;
    }
    return -ENOENT;
}
