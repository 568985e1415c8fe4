/*
 * A long-running HIS in miniature, for memory checks: <calls> calls of the kinds a
 * cashier's program makes all day, in turn (a result lookup, the status, the last
 * error, an invalid call, a size query, SM3 and SM4 helpers; every 100th a real
 * sync call and every 100th an async one), then a clean shutdown.
 * usage: mem_loop <gateway-url> <work-dir> <calls>
 * Prints the resident set size after each tenth of the calls, as
 * "rss_kib <10%> <20%> ... <100%>", and exits non-zero if a call fails.
 */
#include "mi_sdk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long rss_kib(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * 4;
}

static int fail(const char *what, int32_t rc) {
    static char err[4096];
    int32_t len = (int32_t)sizeof err;
    mi_last_error(err, &len);
    fprintf(stderr, "%s: %d %s\n", what, (int)rc, err);
    mi_shutdown(2000);
    return 1;
}

int main(int argc, char **argv) {
    static char config[4096];
    static char out[65536];
    const char *q1101 =
        "{\"data\":{\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"440301199001011234\","
        "\"psn_cert_type\":\"01\",\"certno\":\"440301199001011234\",\"psn_name\":\"\"}}";
    long i, n, rss[10];
    int64_t first = 0, id = 0;
    int32_t len, rc;

    if (argc != 4) {
        fprintf(stderr, "usage: mem_loop <gateway-url> <work-dir> <iterations>\n");
        return 2;
    }
    n = atol(argv[3]);
    snprintf(config, sizeof config,
             "{\"institution\":{\"fixmedins_code\":\"H44030000001\",\"fixmedins_name\":\"memory\","
             "\"mdtrtarea_admvs\":\"440300\",\"opter\":\"0001\",\"opter_name\":\"cashier\"},"
             "\"gateway\":{\"url\":\"%s\"},\"workers\":2,"
             "\"journal\":{\"path\":\"%s/mem_journal.db\",\"synchronous\":\"normal\"},"
             "\"log\":{\"dir\":\"%s/mem_logs\",\"level\":\"warn\"}}",
             argv[1], argv[2], argv[2]);
    rc = mi_init(config);
    if (rc != MI_OK) return fail("mi_init", rc);
    len = (int32_t)sizeof out;
    rc = mi_call_sync("1101", q1101, out, &len);
    if (rc != MI_OK) return fail("first sync call", rc);
    first = mi_last_request_id();

    for (i = 1; i <= n; i++) {
        len = (int32_t)sizeof out;
        if (i % 100 == 0) {
            rc = mi_call_sync("1101", q1101, out, &len);
            if (rc != MI_OK) return fail("sync call", rc);
        } else if (i % 100 == 50) {
            rc = mi_call_async("1101", q1101, 0, &id);
            if (rc != MI_OK && rc != MI_E_BUSY) return fail("async call", rc);
        } else {
            switch (i % 7) {
            case 0:
                rc = mi_get_result(first, out, &len);
                if (rc != MI_OK) return fail("mi_get_result", rc);
                break;
            case 1:
                rc = mi_get_status(out, &len);
                if (rc != MI_OK) return fail("mi_get_status", rc);
                break;
            case 2:
                rc = mi_call_sync("1101", "{\"data\":", out, &len);
                if (rc != MI_E_INVALID_ARGUMENT) return fail("invalid call", rc);
                break;
            case 3:
                rc = mi_last_error(out, &len);
                if (rc != MI_OK) return fail("mi_last_error", rc);
                break;
            case 4:
                len = 0;
                rc = mi_get_result(first, NULL, &len);
                if (rc != MI_E_BUFFER_TOO_SMALL) return fail("size query", rc);
                break;
            case 5:
                rc = mi_sm3_hex("abc", out, &len);
                if (rc != MI_OK) return fail("mi_sm3_hex", rc);
                break;
            default:
                rc = mi_sm4_encrypt_hex("cbc", "0123456789abcdeffedcba9876543210",
                                        "00000000000000000000000000000000", "hello", out, &len);
                if (rc != MI_OK) return fail("mi_sm4_encrypt_hex", rc);
            }
        }
        if (n >= 10 && i % (n / 10) == 0 && i / (n / 10) <= 10) rss[i / (n / 10) - 1] = rss_kib();
    }
    printf("rss_kib");
    for (i = 0; i < 10 && n >= 10; i++) printf(" %ld", rss[i]);
    printf("\n");
    rc = mi_shutdown(5000);
    if (rc != MI_OK) return fail("mi_shutdown", rc);
    return 0;
}
