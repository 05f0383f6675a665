/* SPDX-License-Identifier: MIT */
/*
 * The POSIX HAL backend of kpu-agent-sim (hal_posix_*.c): setup before kfa_hal_init() and
 * the test doors unit tests use (inject rx, take tx, set time, set faults, cut flash
 * power). Host only. Setup functions may allocate; nothing allocates after kfa_hal_init().
 *
 * UART modes: fds (stdin/stdout or an inherited socketpair), pty (created here), or
 * memory (the test doors). Default is memory.
 */
#ifndef KFA_HAL_POSIX_H
#define KFA_HAL_POSIX_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- uart ----------------------------------------------------------------------- */

/* kfa_posix_uart_use_fds - read from rfd, write to wfd (may be equal). Returns 0 or -1. */
int kfa_posix_uart_use_fds(int rfd, int wfd);

/*
 * kfa_posix_uart_use_pty - create a pseudo-terminal in raw mode and use its master side;
 * the slave's path goes to path (cap bytes). Returns 0 or -1 (errno set).
 */
int kfa_posix_uart_use_pty(char *path, size_t cap);

/* kfa_posix_uart_use_mem - the test doors below feed rx and collect tx (the default). */
void kfa_posix_uart_use_mem(void);

/* kfa_posix_inject_rx - queue bytes for the agent to read (memory mode). 0 or -1 if full. */
int kfa_posix_inject_rx(const void *buf, size_t len);

/* kfa_posix_close_rx - memory mode: after the queued bytes, report the host gone. */
void kfa_posix_close_rx(void);

/* kfa_posix_take_tx - move up to cap bytes the agent wrote into buf; returns the count. */
size_t kfa_posix_take_tx(uint8_t *buf, size_t cap);

/* kfa_posix_tx_pending - bytes written by the agent and not yet taken. */
size_t kfa_posix_tx_pending(void);

/*
 * Fault injection on the uart output (spec grammar: comma-separated key=value):
 *   drop=RATE corrupt=RATE dup=RATE garbage=RATE   per byte (garbage: per frame, a burst
 *                                                  of random bytes before it); 0..1
 *   stall=MS@N       before writing the N-th frame, stall MS milliseconds (once)
 *   reboot-after=N   after the N-th frame, reset as if the watchdog fired (once)
 *   silent-after=N   after the N-th frame, write nothing more
 * Frames are counted per uart write since kfa_posix_set_fault. Returns 0, or -1 for a
 * malformed spec (nothing changed). An empty spec clears every fault.
 */
int kfa_posix_set_fault(const char *spec);

/* kfa_posix_set_seed - seed of the chip uid and of the fault generator (stable). */
void kfa_posix_set_seed(uint64_t seed);

/* ---- clock ------------------------------------------------------------------------ */

/* kfa_posix_time_manual - 1: kfa_hal_time_us returns the set time; 0: the real clock. */
void kfa_posix_time_manual(int on);

/* kfa_posix_set_time_us - set the manual clock. */
void kfa_posix_set_time_us(uint64_t t);

/* kfa_posix_advance_us - move the manual clock forward. */
void kfa_posix_advance_us(uint64_t dt);

/* ---- camera ----------------------------------------------------------------------- */

/*
 * kfa_posix_camera_add - append an image (interleaved RGB, w x h) to the camera's cycle;
 * copied. Frames are that image scaled (nearest) to the size the agent asks for. With no
 * image the camera shows a synthetic gradient. Returns 0 or -1.
 */
int kfa_posix_camera_add(const uint8_t *rgb, uint32_t w, uint32_t h);

/* kfa_posix_camera_clear - forget every image. */
void kfa_posix_camera_clear(void);

/*
 * kfa_posix_camera_pace - fps > 0: a new frame every 1/fps second of the HAL clock;
 * fps == 0: a new frame on every kfa_hal_camera_get (as fast as possible). hold: frames
 * per image before moving to the next one (>= 1).
 */
void kfa_posix_camera_pace(double fps, uint32_t hold);

/* kfa_posix_camera_absent - 1: report no sensor (camera tests). */
void kfa_posix_camera_absent(int absent);

/* kfa_posix_camera_next_due_us - HAL time of the next frame (0 = now / as fast). */
uint64_t kfa_posix_camera_next_due_us(void);

/* ---- flash ------------------------------------------------------------------------ */

#define KFA_POSIX_FLASH_DEFAULT (16u * 1024u * 1024u) /* the Maix boards' 16 MiB NOR */

/*
 * kfa_posix_flash_use_file - back the flash by the file at path, created (erased, 0xFF)
 * with size bytes if absent; an existing file keeps its size. Returns 0 or -1.
 */
int kfa_posix_flash_use_file(const char *path, uint32_t size);

/* kfa_posix_flash_use_ram - size bytes of erased flash in memory (tests, fuzzing). */
int kfa_posix_flash_use_ram(uint32_t size);

/* kfa_posix_flash_erase_all - set every byte to 0xFF (fresh flash per fuzz input). */
void kfa_posix_flash_erase_all(void);

/*
 * kfa_posix_flash_cut_after - power-cut door: after n more erase/write operations, the
 * next one is torn (the first half of it happens) and every later one fails with
 * KFA_HAL_E_IO, as if power went away. n < 0 restores normal flash.
 */
void kfa_posix_flash_cut_after(long n);

/* kfa_posix_flash_ops - erase and write operations done since the flash was set up. */
unsigned long kfa_posix_flash_ops(void);

/* kfa_posix_flash_ptr - the flash contents (tests read them directly). */
uint8_t *kfa_posix_flash_ptr(void);

/* ---- reset ------------------------------------------------------------------------ */

/*
 * kfa_posix_set_reset_jump - where kfa_hal_reset() goes: siglongjmp(*jb, 1 + to_isp).
 * NULL: kfa_hal_reset() exits the process (status 0, 3 for ISP).
 */
void kfa_posix_set_reset_jump(sigjmp_buf *jb);

/* kfa_posix_resets - kfa_hal_reset() calls so far. */
unsigned kfa_posix_resets(void);

/* kfa_posix_set_reset_cause - what kfa_hal_reset_cause() reports (enum kfa_reset_cause). */
void kfa_posix_set_reset_cause(int cause);

/* kfa_posix_baud_requests - last baud set through kfa_hal_uart_set_baud (0 if none). */
uint32_t kfa_posix_last_baud(void);

#ifdef __cplusplus
}
#endif

#endif /* KFA_HAL_POSIX_H */
