/* The basic pattern: initialise, one sync call (1101), handle each code, clean up.
 * Build: cargo build --release   (the library; `cargo run --example` alone does not
 *                                 put libmi_sdk.so in target/release), then
 *        gcc -std=c99 -Iinclude examples/c/basic.c -Ltarget/release -lmi_sdk
 * Run:   LD_LIBRARY_PATH=target/release ./a.out mi_sdk.json */
#include "mi_sdk.h"
#include <stdio.h>

int main(int argc, char **argv) {
    static char out[65536];
    int32_t len = (int32_t)sizeof out;
    int32_t rc = mi_init(argc > 1 ? argv[1] : NULL); /* JSON text, a file path, or NULL */
    if (rc != MI_OK) {
        mi_last_error(out, &len);
        fprintf(stderr, "mi_init failed (%d): %s\n", (int)rc, out);
        return 1;
    }
    rc = mi_call_sync("1101",
                      "{\"data\":{\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"440301199001011234\","
                      "\"psn_cert_type\":\"01\",\"certno\":\"440301199001011234\",\"psn_name\":\"\"}}",
                      out, &len);
    if (rc == MI_E_BUFFER_TOO_SMALL) { /* the call happened; fetch the kept result */
        fprintf(stderr, "need %d bytes; ask mi_get_result(%lld, ...)\n", (int)len, (long long)mi_last_request_id());
    } else {
        printf("rc=%d %s\n", (int)rc, out); /* MI_E_BUSINESS: show err_msg; MI_E_UNCERTAIN: reverse */
    }
    mi_shutdown(5000);
    return rc == MI_OK ? 0 : 1;
}
