/* SPDX-License-Identifier: MIT */
/* The subcommands of the capcr binary. */
#ifndef CAPCR_COMMANDS_H
#define CAPCR_COMMANDS_H

int cmd_run(int argc, char **argv);
int cmd_caps(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_predump(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_check(int argc, char **argv);

#endif
