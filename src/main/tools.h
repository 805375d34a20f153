/* tools.h - maintenance commands that work on a data directory, also while a server runs on
 * it (SQLite WAL and the flock-based locks of core/ coordinate the processes). Each returns a
 * process exit status: 0 ok, 1 failure (or, for fsck, damage found and not repaired), 2 usage. */
#ifndef BERTH_TOOLS_H
#define BERTH_TOOLS_H

int cmd_gc(int argc, char **argv);
int cmd_lifecycle(int argc, char **argv);
int cmd_fsck(int argc, char **argv);

#endif
