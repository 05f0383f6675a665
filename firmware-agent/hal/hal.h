/* SPDX-License-Identifier: MIT */
/*
 * The hardware contract of the agent. core/ and kmodel/ call only these functions; a
 * backend provides all of them and CMake picks the backend at link time:
 *
 *   hal/k210/   bare metal on the K210 (UARTHS, DVP+SCCB, KPU, SPI3 flash, WDT)
 *   hal/qemu/   qemu-system-riscv64 sifive_u (same UART IP, software KPU, RAM flash)
 *   hal/posix/  the host simulator kpu-agent-sim (image files, socket/pty, file flash)
 *
 * Rules for every backend: no function blocks longer than its comment allows, none
 * allocates after kfa_hal_init(), and none calls back into core/ except where a callback
 * is documented.
 */
#ifndef KFA_HAL_H
#define KFA_HAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- lifecycle ------------------------------------------------------------------- */

/*
 * kfa_hal_init - bring up clocks, pins, UART, camera and KPU. Called once, first thing
 * in the agent's main, before any other kfa_hal_ function. Returns 0, or a negative
 * KFA_HAL_E* if a mandatory peripheral failed (the agent still starts and reports the
 * failure in HELLO).
 */
int kfa_hal_init(void);

#define KFA_HAL_E_IO (-1)     /* device or file error */
#define KFA_HAL_E_NODEV (-2)  /* peripheral absent (e.g. no camera sensor answered) */
#define KFA_HAL_E_RANGE (-3)  /* argument outside what the hardware supports */
#define KFA_HAL_E_AGAIN (-4)  /* nothing available now; try later */
#define KFA_HAL_E_CLOSED (-5) /* the link is gone for good (host side of sim closed) */

/* ---- clock ----------------------------------------------------------------------- */

/* kfa_hal_time_us - monotonic microseconds since boot. Never blocks. */
uint64_t kfa_hal_time_us(void);

/*
 * kfa_hal_wait_event - sleep until UART data arrives, a camera frame is ready, or
 * timeout_us passes, whichever is first. May return early for no reason.
 */
void kfa_hal_wait_event(uint32_t timeout_us);

/* ---- UART to the host (through the board's USB bridge) ---------------------------- */

/*
 * kfa_hal_uart_read - copy up to cap received bytes into buf without blocking.
 * Returns the number of bytes (0 if none), or KFA_HAL_E_CLOSED when the host side is
 * gone for good (sim only; a real UART never closes).
 */
int kfa_hal_uart_read(uint8_t *buf, size_t cap);

/*
 * kfa_hal_uart_write - queue len bytes for transmission. Blocks at most until they fit
 * in the transmit buffer (on hardware: until the FIFO drains enough). Returns len, or a
 * negative KFA_HAL_E*.
 */
int kfa_hal_uart_write(const uint8_t *buf, size_t len);

/* kfa_hal_uart_set_baud - change the line rate after the current bytes are sent. */
int kfa_hal_uart_set_baud(uint32_t baud);

/* kfa_hal_uart_baud - the current line rate, 0 where there is no real UART. */
uint32_t kfa_hal_uart_baud(void);

/* ---- camera ---------------------------------------------------------------------- */

enum kfa_sensor {
    KFA_SENSOR_NONE = 0,
    KFA_SENSOR_SYNTHETIC = 1,
    KFA_SENSOR_OV2640 = 2,
    KFA_SENSOR_GC0328 = 3,
};

struct kfa_frame {
    uint16_t width; /* pixels */
    uint16_t height;
    const uint8_t *rgb888;  /* planar R, G, B planes of width*height bytes each */
    const uint16_t *rgb565; /* the same frame as RGB565 for snapshots; may be NULL */
    uint64_t time_us;       /* capture time, kfa_hal_time_us() clock */
};

/* kfa_hal_camera_sensor - which sensor answered at init. */
enum kfa_sensor kfa_hal_camera_sensor(void);

/*
 * kfa_hal_camera_start - start capturing width x height frames. Returns 0 or
 * KFA_HAL_E_RANGE for a size the sensor cannot produce.
 */
int kfa_hal_camera_start(uint16_t width, uint16_t height);

/*
 * kfa_hal_camera_get - the newest complete frame, without blocking. Returns 0 and fills
 * *frame (valid until kfa_hal_camera_release), or KFA_HAL_E_AGAIN if no new frame.
 */
int kfa_hal_camera_get(struct kfa_frame *frame);

/* kfa_hal_camera_release - give the frame buffer back to the capture engine. */
void kfa_hal_camera_release(void);

/* ---- KPU ------------------------------------------------------------------------- */

/* How the software KPU rounds exact .5 ties in its rounding shifts (kmodel-facts §3.3). */
enum kfa_rounding {
    KFA_ROUND_HALF_EVEN = 0, /* nncase >= 0.2 "banker" carry shift; the default */
    KFA_ROUND_HALF_UP = 1,   /* nncase 0.1 and the SDK's kpu_carry_shift */
};

#define KFA_KPU_RAM_SIZE (2u * 1024u * 1024u) /* 2 MiB AI SRAM, 32768 lines of 64 bytes */

/*
 * One K210_CONV layer as a kmodel stores it. All pointers point into the model file (or
 * a copy of it in RAM); nothing is patched in place.
 */
struct kfa_kpu_conv {
    const uint8_t *arg;     /* the 12 little-endian u64 words of kpu_layer_argument_t */
    const uint8_t *weights; /* u8 (eight_bit) or u16 LE weights */
    size_t weights_len;     /* bytes available at weights */
    const uint8_t *bn;      /* one u64 per output channel */
    const uint8_t *act;     /* 144-byte activation table */
    uint8_t *main_out;      /* dense uint8 CHW copy of the output, or NULL */
    size_t main_out_len;    /* bytes available at main_out */
    int eight_bit;          /* kmodel header flags bit 0 */
};

/*
 * kfa_hal_kpu_conv - run one K210_CONV layer: read the input from kpu_ram (the 2 MiB
 * KPU RAM image, KFA_KPU_RAM_SIZE bytes), write the output back into kpu_ram at the
 * layer's destination, and densely to main_out when it is set. On the K210, kpu_ram is
 * the AI SRAM itself and the KPU does the work; elsewhere the software emulation does,
 * rounding ties as `rounding` says (hardware ignores it).
 * Returns 0, or KFA_HAL_E_RANGE if the argument describes something the KPU cannot do
 * (the caller reports it as a model error). Blocks until the layer is done.
 */
int kfa_hal_kpu_conv(const struct kfa_kpu_conv *conv, uint8_t *kpu_ram, enum kfa_rounding rounding);

/*
 * kfa_hal_kpu_ram - the KPU RAM image kmodel runs use (KFA_KPU_RAM_SIZE bytes): the AI
 * SRAM on the K210, a static array elsewhere.
 */
uint8_t *kfa_hal_kpu_ram(void);

/* ---- flash (model store, persisted config, agent image) ------------------------- */

/* kfa_hal_flash_size - bytes of flash, 0 if none. */
uint32_t kfa_hal_flash_size(void);

/* kfa_hal_flash_read - read len bytes at offset. Returns 0 or KFA_HAL_E_IO/RANGE. */
int kfa_hal_flash_read(uint32_t offset, void *buf, size_t len);

/*
 * kfa_hal_flash_erase - erase [offset, offset+len); both multiples of
 * KFA_HAL_FLASH_SECTOR. Blocks until done (tens of ms per sector on SPI NOR).
 */
int kfa_hal_flash_erase(uint32_t offset, uint32_t len);
#define KFA_HAL_FLASH_SECTOR 4096u

/* kfa_hal_flash_write - program erased flash. Blocks until done. */
int kfa_hal_flash_write(uint32_t offset, const void *buf, size_t len);

/* ---- identity, reset, watchdog --------------------------------------------------- */

/* kfa_hal_unique_id - copy the chip's unique id (up to cap bytes); returns its length. */
size_t kfa_hal_unique_id(uint8_t *buf, size_t cap);

enum kfa_reset_cause {
    KFA_RESET_UNKNOWN = 0,
    KFA_RESET_POWER_ON = 1,
    KFA_RESET_EXTERNAL = 2,
    KFA_RESET_WATCHDOG = 3,
    KFA_RESET_SOFTWARE = 4,
};

/* kfa_hal_reset_cause - why the agent (re)started. */
enum kfa_reset_cause kfa_hal_reset_cause(void);

/* kfa_hal_reset - reset the chip; into the ROM ISP loader when to_isp. Does not return. */
void kfa_hal_reset(int to_isp) __attribute__((noreturn));

/* kfa_hal_watchdog_kick - feed the watchdog; the main loop calls it every iteration. */
void kfa_hal_watchdog_kick(void);

/* kfa_hal_free_ram - bytes of RAM not used by the agent's static plan. */
uint32_t kfa_hal_free_ram(void);

/* kfa_hal_board - kpu.link.v1.Board value of this board. */
uint32_t kfa_hal_board(void);

#ifdef __cplusplus
}
#endif

#endif /* KFA_HAL_H */
