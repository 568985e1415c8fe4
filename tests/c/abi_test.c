/*
 * A HIS-style C99 client written only from include/mi_sdk.h and docs/api_reference.md.
 * usage: abi_test <gateway-url> <work-dir> <paas-id> <paas-token>
 * Runs a sync and an async 1101 against mi-sim (tif profile) and checks every
 * bad-input code the ABI promises. Prints "N passed, M failed" and exits non-zero
 * on any failure.
 */
#include "mi_sdk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int passed = 0, failed = 0;

#define CHECK(cond, what)                                                    \
    do {                                                                     \
        if (cond) {                                                          \
            passed++;                                                        \
        } else {                                                             \
            failed++;                                                        \
            fprintf(stderr, "FAIL line %d: %s\n", __LINE__, what);           \
        }                                                                    \
    } while (0)

static const char *last_error(void) {
    static char buf[4096];
    int32_t len = (int32_t)sizeof buf;
    if (mi_last_error(buf, &len) != MI_OK) return "(mi_last_error failed)";
    return buf;
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    static char config[4096];
    static char out[65536];
    int32_t len;
    int32_t rc;
    int64_t id = 0;
    const char *q1101 =
        "{\"data\":{\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"440301199001011234\","
        "\"psn_cert_type\":\"01\",\"certno\":\"440301199001011234\",\"psn_name\":\"\"}}";
    int i;

    if (argc != 5) {
        fprintf(stderr, "usage: abi_test <gateway-url> <work-dir> <paas-id> <paas-token>\n");
        return 2;
    }
    CHECK(mi_abi_version() == MI_ABI_VERSION, "abi version matches the header");
    CHECK(strcmp(mi_version(), MI_SDK_VERSION) == 0, "version matches the header");
    CHECK(strcmp(mi_code_name(MI_E_UNCERTAIN), "MI_E_UNCERTAIN") == 0 && strcmp(mi_code_name(MI_OK), "MI_OK") == 0,
          "code names");
    CHECK(strcmp(mi_code_name(42), "MI_UNKNOWN") == 0, "a value that is no code");

    /* The crypto helpers need no init. */
    len = (int32_t)sizeof out;
    CHECK(mi_sm3_hex("abc", out, &len) == MI_OK &&
              strcmp(out, "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0") == 0,
          "SM3 of abc");
    len = (int32_t)sizeof out;
    CHECK(mi_sm4_encrypt_hex("ecb", "0123456789abcdeffedcba9876543210", NULL, "hello", out, &len) == MI_OK &&
              len == 32,
          "SM4-ECB of one padded block");
    {
        char plain[64];
        int32_t plen = (int32_t)sizeof plain;
        CHECK(mi_sm4_decrypt_hex("ecb", "0123456789abcdeffedcba9876543210", NULL, out, plain, &plen) == MI_OK &&
                  strcmp(plain, "hello") == 0,
              "SM4-ECB round trip");
    }
    len = (int32_t)sizeof out;
    CHECK(mi_sm4_encrypt_hex("cbc", "0123456789abcdeffedcba9876543210", NULL, "x", out, &len) == MI_E_INVALID_ARGUMENT,
          "CBC without IV");

    /* Before init. */
    len = (int32_t)sizeof out;
    CHECK(mi_call_sync("1101", q1101, out, &len) == MI_E_NOT_INITIALIZED, "call before init");
    CHECK(mi_last_request_id() == 0, "no request id before any call");

    snprintf(config, sizeof config,
             "{\"institution\":{\"fixmedins_code\":\"H44030000001\",\"fixmedins_name\":\"C test hospital\","
             "\"mdtrtarea_admvs\":\"440300\",\"opter\":\"0001\",\"opter_name\":\"cashier\"},"
             "\"gateway\":{\"url\":\"%s\",\"profile\":\"tif\",\"paas_id\":\"%s\",\"paas_token\":\"%s\","
             "\"timeout_ms\":5000},"
             "\"journal\":{\"path\":\"%s/c_journal.db\"},\"log\":{\"dir\":\"%s/c_logs\"}}",
             argv[1], argv[3], argv[4], argv[2], argv[2]);
    CHECK(mi_init("{\"institution\":{}}") == MI_E_CONFIG, "bad config");
    CHECK(strstr(last_error(), "institution") != NULL, "config error names the key");
    rc = mi_init(config);
    CHECK(rc == MI_OK, "init");
    if (rc != MI_OK) {
        fprintf(stderr, "mi_init: %s\n", last_error());
        return 1;
    }
    CHECK(mi_init(config) == MI_OK, "init again with the same config");

    /* Sync 1101. */
    len = (int32_t)sizeof out;
    rc = mi_call_sync("1101", q1101, out, &len);
    CHECK(rc == MI_OK, "sync 1101");
    CHECK(len == (int32_t)strlen(out), "len is the text length");
    CHECK(strstr(out, "\"psn_no\":\"44030000000000100001\"") != NULL, "1101 output has the person");
    CHECK(mi_last_request_id() > 0, "sync call has a request id");

    /* Buffer protocol: ask for the size, then fetch the kept result. */
    len = 0;
    rc = mi_call_sync("1101", q1101, NULL, &len);
    CHECK(rc == MI_E_BUFFER_TOO_SMALL && len > 0, "size query");
    {
        int32_t needed = len;
        char *exact = (char *)malloc((size_t)needed + 1);
        int32_t cap = needed + 1;
        CHECK(exact != NULL, "malloc");
        if (exact != NULL) {
            CHECK(mi_get_result(mi_last_request_id(), exact, &cap) == MI_OK, "fetch kept result");
            CHECK(cap == needed && exact[needed] == '\0', "exactly needed+1 bytes suffice");
            free(exact);
        }
    }
    {
        char tiny[4] = {'x', 'x', 'x', 'x'};
        len = 4;
        CHECK(mi_call_sync("1101", q1101, tiny, &len) == MI_E_BUFFER_TOO_SMALL, "tiny buffer");
        CHECK(tiny[0] == '\0' && tiny[1] == 'x', "tiny buffer gets only a NUL");
    }

    /* Async 1101. */
    rc = mi_call_async("1101", q1101, 5, &id);
    CHECK(rc == MI_OK && id > 0, "async submit");
    for (i = 0; i < 500; i++) {
        len = (int32_t)sizeof out;
        rc = mi_get_result(id, out, &len);
        if (rc != MI_PENDING) break;
        sleep_ms(10);
    }
    CHECK(rc == MI_OK, "async result");
    CHECK(strstr(out, "44030000000000100001") != NULL, "async output has the person");
    len = (int32_t)sizeof out;
    CHECK(mi_get_request(id, out, &len) == MI_OK && strstr(out, "\"state\":\"succeeded\"") != NULL, "request record");

    /* Files: upload a file this program writes, download it into a folder. */
    {
        static char path[1024], dest[1024], no[128], back[2100];
        const char *p, *q;
        FILE *f;
        snprintf(path, sizeof path, "%s/c_upload.txt", argv[2]);
        snprintf(dest, sizeof dest, "%s/c_download", argv[2]);
        f = fopen(path, "wb");
        CHECK(f != NULL, "write the file to upload");
        if (f != NULL) {
            for (i = 0; i < 1000; i++) fputs("a line of the file to upload\n", f);
            fclose(f);
        }
        len = (int32_t)sizeof out;
        rc = mi_upload_file(path, out, &len);
        CHECK(rc == MI_OK, "mi_upload_file");
        p = strstr(out, "\"file_qury_no\":\"");
        CHECK(p != NULL, "the upload's answer names the file");
        no[0] = '\0';
        if (p != NULL) {
            p += strlen("\"file_qury_no\":\"");
            q = strchr(p, '"');
            if (q != NULL && (size_t)(q - p) < sizeof no) {
                memcpy(no, p, (size_t)(q - p));
                no[q - p] = '\0';
            }
        }
        len = (int32_t)sizeof out;
        rc = mi_download_file(no, "c_upload.txt", dest, out, &len);
        CHECK(rc == MI_OK && strstr(out, "\"bytes\":29000") != NULL, "mi_download_file unpacks the file");
        snprintf(back, sizeof back, "%s/c_upload.txt", dest);
        f = fopen(back, "rb");
        CHECK(f != NULL, "the downloaded file is in dest_dir");
        if (f != NULL) fclose(f);
        len = (int32_t)sizeof out;
        CHECK(mi_download_file(NULL, "x", dest, out, &len) == MI_E_INVALID_ARGUMENT, "NULL file_qury_no");
        len = (int32_t)sizeof out;
        CHECK(mi_upload_file(NULL, out, &len) == MI_E_INVALID_ARGUMENT, "NULL path");
    }

    /* Every bad-input code. */
    len = (int32_t)sizeof out;
    CHECK(mi_call_sync(NULL, q1101, out, &len) == MI_E_INVALID_ARGUMENT, "NULL infno");
    len = (int32_t)sizeof out;
    CHECK(mi_call_sync("1101", NULL, out, &len) == MI_E_INVALID_ARGUMENT, "NULL input");
    CHECK(mi_call_sync("1101", q1101, out, NULL) == MI_E_INVALID_ARGUMENT, "NULL len");
    len = 10;
    CHECK(mi_call_sync("1101", q1101, NULL, &len) == MI_E_INVALID_ARGUMENT, "NULL buffer with capacity");
    len = (int32_t)sizeof out;
    CHECK(mi_call_sync("11a1", q1101, out, &len) == MI_E_INVALID_ARGUMENT, "malformed infno");
    len = (int32_t)sizeof out;
    CHECK(mi_call_sync("1101", "[1]", out, &len) == MI_E_INVALID_ARGUMENT, "input not an object");
    CHECK(strstr(out, "\"mi_code\":-1") != NULL, "invalid input still gets an output");
    len = (int32_t)sizeof out;
    CHECK(mi_call_sync("1101", "{\"data\":", out, &len) == MI_E_INVALID_ARGUMENT, "broken JSON");
    len = (int32_t)sizeof out;
    CHECK(mi_call_sync("1101", "{\"data\":\"\xd5\xc5\"}", out, &len) == MI_E_INVALID_ARGUMENT, "not UTF-8");
    len = (int32_t)sizeof out;
    CHECK(mi_call_sync("1101", "{\"input\":{},\"nope\":\"1\"}", out, &len) == MI_E_INVALID_ARGUMENT, "unknown override");
    CHECK(mi_call_async("1101", q1101, 0, NULL) == MI_E_INVALID_ARGUMENT, "NULL request_id");
    len = (int32_t)sizeof out;
    CHECK(mi_get_result(99999999, out, &len) == MI_E_NOT_FOUND, "unknown id");
    len = (int32_t)sizeof out;
    CHECK(mi_reverse(id, out, &len) == MI_E_INVALID_ARGUMENT, "reverse not yet supported");
    len = (int32_t)sizeof out;
    CHECK(mi_get_status(out, &len) == MI_OK && strstr(out, "\"profile\":\"tif\"") != NULL, "status");
    CHECK(strstr(out, argv[4]) == NULL, "status holds no secret");

    CHECK(mi_shutdown(2000) == MI_OK, "shutdown");

    /* GBK end to end: the name goes in as GBK bytes, the platform sees UTF-8, the
     * Chinese err_msg comes back as GBK. */
    config[strlen(config) - 1] = '\0';
    strcat(config, ",\"charset\":\"gbk\"}");
    CHECK(mi_init(config) == MI_OK, "init gbk");
    len = (int32_t)sizeof out;
    rc = mi_call_sync("1101",
                      "{\"data\":{\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"440301199001011234\","
                      "\"psn_name\":\"\xd5\xc5\xc8\xfd\"}}",
                      out, &len);
    CHECK(rc == MI_OK && strstr(out, "\xd5\xc5\xc8\xfd") != NULL, "GBK name in and out");
    len = (int32_t)sizeof out;
    rc = mi_call_sync("1101", "{\"data\":{\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"0\"}}", out, &len);
    CHECK(rc == MI_E_BUSINESS && strstr(last_error(), "\xce\xb4\xb2\xe9\xd1\xaf\xb5\xbd") != NULL, "GBK err_msg");
    len = (int32_t)sizeof out;
    CHECK(mi_call_sync("1101", "{\"data\":\"\x81\"}", out, &len) == MI_E_INVALID_ARGUMENT, "invalid GBK");
    CHECK(mi_shutdown(2000) == MI_OK, "shutdown gbk");
    CHECK(mi_shutdown(0) == MI_OK, "shutdown again");
    len = (int32_t)sizeof out;
    CHECK(mi_call_sync("1101", q1101, out, &len) == MI_E_NOT_INITIALIZED, "call after shutdown");

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
