/* SPDX-License-Identifier: MIT */
/* The monitor's main loop, shared by capcr run and capcr restore: serve the
 * PD channel, pass signals on, wait for the target to end. */
#ifndef CAPCR_SUPERVISE_H
#define CAPCR_SUPERVISE_H

#include <signal.h>
#include <sys/types.h>

#include "pd_service.h"

/* Block the signals the loop handles (before the target is made); *orig
 * receives the mask to give the target. */
int supervise_prepare(sigset_t *orig);
/* Serve until child ends; returns its exit status in the shell's form
 * (128+N when killed by signal N). */
int supervise(struct pd_service *pd, pid_t child);

#endif
