/* Async batch: submit many queries with mi_call_async, then collect the results with
 * mi_get_result, drawing a progress bar. Build as examples/c/basic.c; run with a
 * config path: ./batch mi_sdk.json [count] */
#include "mi_sdk.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_BATCH 10000

static int64_t ids[MAX_BATCH];

int main(int argc, char **argv) {
    static char out[65536];
    int32_t len = (int32_t)sizeof out;
    int count = argc > 2 ? atoi(argv[2]) : 100;
    int i, done = 0, failed = 0;
    const char *q = "{\"data\":{\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"440301199001011234\"}}";
    if (count < 1 || count > MAX_BATCH) count = 100;
    if (mi_init(argc > 1 ? argv[1] : NULL) != MI_OK) {
        mi_last_error(out, &len);
        fprintf(stderr, "mi_init: %s\n", out);
        return 1;
    }
    for (i = 0; i < count; i++) {
        /* Committed to the journal when this returns: it survives a crash from now on. */
        int32_t rc = mi_call_async("1101", q, 0, &ids[i]);
        if (rc == MI_E_BUSY) { i--; continue; } /* the queue is full: try again */
        if (rc != MI_OK) {
            len = (int32_t)sizeof out;
            mi_last_error(out, &len);
            fprintf(stderr, "mi_call_async: %d %s\n", (int)rc, out);
            mi_shutdown(5000);
            return 1;
        }
    }
    while (done < count) {
        int32_t rc;
        len = (int32_t)sizeof out;
        rc = mi_get_result(ids[done], out, &len);
        if (rc == MI_PENDING) continue; /* still queued, sending, or waiting to retry */
        if (rc != MI_OK) failed++;
        done++;
        printf("\r[%-40.*s] %d/%d", done * 40 / count, "########################################", done, count);
        fflush(stdout);
    }
    printf("\n%d answered, %d not OK\n", count - failed, failed);
    mi_shutdown(5000);
    return failed == 0 ? 0 : 1;
}
