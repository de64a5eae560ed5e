/* `slr pool run` served in C, before the interpreter starts (pool_client.c). */
#ifndef SLR_POOL_CLIENT_H
#define SLR_POOL_CLIENT_H

/* 1 when the command line was a `pool run` this client serves: *status is then the
 * process's exit status. 0 when it is not: nothing has been done, and the Python CLI
 * runs the command line. */
int slr_pool_run(int argc, char **argv, int *status);

#endif
