/*
 * mi_init(NULL) finds mi_sdk.json beside the library file, and relative paths in it
 * resolve against that folder. usage: beside <expected-journal-path>
 */
#include "mi_sdk.h"

#include <stdio.h>

int main(int argc, char **argv) {
    static char out[65536];
    int32_t len = (int32_t)sizeof out;
    int32_t rc;
    FILE *f;
    if (argc != 2) return 2;
    rc = mi_init(NULL);
    if (rc != MI_OK) {
        mi_last_error(out, &len);
        fprintf(stderr, "mi_init(NULL) = %d: %s\n", (int)rc, out);
        return 1;
    }
    rc = mi_call_sync("1101", "{\"data\":{\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"440301199001011234\"}}", out, &len);
    if (rc != MI_OK) {
        fprintf(stderr, "1101 = %d: %s\n", (int)rc, out);
        return 1;
    }
    mi_shutdown(2000);
    f = fopen(argv[1], "rb");
    if (f == NULL) {
        fprintf(stderr, "no journal at %s\n", argv[1]);
        return 1;
    }
    fclose(f);
    printf("1 passed, 0 failed\n");
    return 0;
}
