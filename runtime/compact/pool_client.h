/* `slr pool run` served in C by the static front (slr_front.c, pool_client.c). */
#ifndef SLR_POOL_CLIENT_H
#define SLR_POOL_CLIENT_H

#include <stddef.h>

/* 1 when the command line was a `pool run` this client serves: *status is then the
 * process's exit status. 0 when it is not: nothing has been done, and the Python CLI
 * runs the command line. */
int slr_pool_run(int argc, char **argv, int *status);

/* "slr: PREFIX TEXT" and a newline on stderr, as the Python CLI reports an error;
 * returns 1, the error status. */
int slr_report(const char *prefix, const char *text, size_t text_length);

#endif
