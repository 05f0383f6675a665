/* SPDX-License-Identifier: MIT */
/*
 * Subcommands of kpu-agent-sim and the small helpers they share (host only). Each
 * subcommand is `int cmd_<name>(int argc, char **argv)` with argv[0] = the subcommand name,
 * returning the process exit status (SIM_EXIT_*).
 */
#ifndef KFA_SIM_CMDS_H
#define KFA_SIM_CMDS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SIM_EXIT_OK 0
#define SIM_EXIT_FAIL 1  /* a file, model or run failed */
#define SIM_EXIT_USAGE 2 /* bad command line */

#define SIM_MAX_MODEL_BYTES (64u * 1024u * 1024u) /* far above the K210's 6 MiB */

int cmd_infer(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/*
 * sim_read_file - read the whole file at path (at most max bytes) into a malloc'd buffer.
 * Returns 0 with *data (caller frees) and *len, or -1 after printing the reason to stderr.
 */
int sim_read_file(const char *path, size_t max, uint8_t **data, size_t *len);

/* sim_json_string - print s to f as a JSON string literal (quoted, escaped). */
void sim_json_string(FILE *f, const char *s);

/* sim_prog - the program name for messages ("kpu-agent-sim"). */
extern const char *sim_prog;

#endif /* KFA_SIM_CMDS_H */
