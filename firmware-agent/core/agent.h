/* SPDX-License-Identifier: MIT */
/*
 * The agent's portable core: the link server (klink frames over the HAL uart, nanopb
 * messages), command dispatch, the detection pipeline, snapshots, the flash model store and
 * the persisted configuration. docs/agent.md describes the behaviour on the wire.
 *
 * Everything is allocated statically; nothing here calls malloc. A backend's main is:
 *
 *     kfa_hal_init();
 *     kfa_agent_init();
 *     for (;;) {
 *         if (kfa_agent_poll() == KFA_HAL_E_CLOSED)
 *             break;
 *         kfa_hal_wait_event(kfa_agent_idle_us());
 *     }
 *
 * kfa_agent_run() is exactly that loop.
 */
#ifndef KFA_AGENT_H
#define KFA_AGENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KFA_PROTOCOL_MAJOR 1u
#define KFA_PROTOCOL_MINOR 1u

/* Version string reported in AgentHello; CMake passes the project version. */
#ifndef KFA_AGENT_VERSION
#define KFA_AGENT_VERSION "0.0.0-dev"
#endif

/*
 * Static budgets of the core (bytes unless noted). These are sizes, not per-board code:
 * a backend's build may override them with -D. The defaults fit the K210's 6 MiB of
 * general SRAM (DESIGN.md §2) with room for the stack and the HAL.
 */
#ifndef KFA_MODEL_RAM
#define KFA_MODEL_RAM (3u * 1024u * 1024u) /* largest kmodel the agent can run */
#endif
#ifndef KFA_MAIN_RAM
#define KFA_MAIN_RAM (1024u * 1024u) /* kmodel main buffer (main_mem_usage) */
#endif
#ifndef KFA_CAMERA_W
#define KFA_CAMERA_W 320u /* capture size the agent asks the camera for */
#endif
#ifndef KFA_CAMERA_H
#define KFA_CAMERA_H 240u
#endif
#ifndef KFA_INPUT_MAX
#define KFA_INPUT_MAX (3u * 320u * 256u) /* model input bytes (u8 C x H x W) */
#endif
#ifndef KFA_CANDIDATES
#define KFA_CANDIDATES 4096u /* YOLOv2 candidates above threshold per frame */
#endif

#define KFA_HEARTBEAT_US 1000000u     /* heartbeat period while a host is connected */
#define KFA_HOST_SILENCE_US 10000000u /* no valid frame this long: host gone */
#define KFA_SNAPSHOT_CHUNK 2048u      /* link.options: SnapshotChunk.data max_size */
#define KFA_SNAPSHOT_DEFAULT_CREDITS 4u
#define KFA_SNAPSHOT_CHUNKS_PER_STEP 3 /* snapshot chunks sent per main-loop step */

/*
 * kfa_agent_init - (re)initialise every piece of core state, open the model store, load
 * the persisted configuration and the selected model, start the camera, and send the
 * unsolicited AgentHello. Call after kfa_hal_init(); calling it again is a clean restart.
 * Returns 0 (problems are reported to the host with LogLine and in HELLO, not here).
 */
int kfa_agent_init(void);

/*
 * kfa_agent_poll - one main-loop step: read and handle the host's frames, send a heartbeat
 * when due, run the pipeline once if streaming and a frame is ready, send one snapshot
 * chunk if a credit allows. Never blocks beyond the HAL calls it makes.
 * Returns 0, or KFA_HAL_E_CLOSED when the uart reports the host gone for good.
 */
int kfa_agent_poll(void);

/* kfa_agent_idle_us - how long the main loop may wait for an event before the next poll. */
uint32_t kfa_agent_idle_us(void);

/* kfa_agent_run - init and the main loop above; returns only when the link closes. */
int kfa_agent_run(void);

/* Counters for tests and the heartbeat. */
struct kfa_agent_stats {
    uint32_t frames;         /* frames processed by the pipeline since boot */
    uint32_t frames_dropped; /* detection frames the uart would not take */
    uint32_t rx_errors;      /* klink frames or requests rejected */
    uint32_t requests;       /* requests handled */
    uint32_t tx_errors;      /* uart write failures */
    uint32_t pipeline_errors;
};

/* kfa_agent_get_stats - a copy of the counters. */
void kfa_agent_get_stats(struct kfa_agent_stats *out);

/* kfa_agent_streaming - 1 while streaming detections. */
int kfa_agent_streaming(void);

/* kfa_agent_model_loaded - 1 if a model is loaded and ready to run. */
int kfa_agent_model_loaded(void);

/*
 * kfa_agent_seed_model - put a model into the flash store through the same checks as an
 * upload (CRC, kmodel loader, atomic commit) and select it; a model already stored with
 * this name and CRC is only selected. For kpu-agent-sim --model: call after kfa_hal_init()
 * and before kfa_agent_init(). Returns 0, or a negative kpu.link.v1.StatusCode with a
 * reason in text.
 */
int kfa_agent_seed_model(const char *name, const uint8_t *data, size_t size,
                         const uint8_t *manifest, size_t manifest_len, char *text, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* KFA_AGENT_H */
