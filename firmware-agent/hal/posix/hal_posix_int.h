/* SPDX-License-Identifier: MIT */
/* Internal links between the hal_posix_*.c files. */
#ifndef KFA_HAL_POSIX_INT_H
#define KFA_HAL_POSIX_INT_H

#include <stdint.h>

/* uart: the descriptor wait_event polls (-1 in memory mode), memory rx waiting. */
int kfa_posix_uart_rx_fd(void);
int kfa_posix_uart_rx_ready(void);
void kfa_posix_uart_seed(uint64_t seed);

/* camera: 1 if unpaced and polled since the last call (the next frame is ready now). */
int kfa_posix_camera_take_polled(void);

/* sys: sleep ms of the HAL clock (real sleep, or a jump of the manual clock). */
void kfa_posix_stall_ms(uint32_t ms);

/* sys: reset as kfa_hal_reset(0) does, keeping the cause already set. */
void kfa_posix_reboot(void) __attribute__((noreturn));

#endif /* KFA_HAL_POSIX_INT_H */
