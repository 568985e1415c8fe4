/*
 * A Windows HIS-style client: LoadLibraryA("mi_sdk.dll") + GetProcAddress, no import
 * library, calls through MI_CALL (__stdcall on 32-bit) function pointers.
 * usage: win_loader <config-json-file> <visit-number>   Prints "N passed, M failed".
 * Its last request waits at the simulator's gate "win<visit-number>".
 * With @<path> as the first argument, the path itself goes to mi_init (in the ANSI
 * code page, as a HIS passes it), not the file's text; the program prints GetACP().
 * Where the stand-in e-voucher and card readers sit beside it (NationECCode.dll,
 * SSCard.dll for the card, HeaSecReadInfo.dll for the ID card: sim/readers/fake_reader.c
 * built by mingw, configured in "readers"), identifies the patient through them
 * first; then runs sign-in (automatic), 1101 with that identity, an outpatient visit
 * (2201 2204 2206 2207), an async
 * 1101, and the status, as a cashier's program on Windows would; then mi_shutdown
 * with a send in flight and FreeLibrary right after it.
 */
#include <windows.h>
#include <stdio.h>
#include <string.h>
#include "mi_sdk.h"

typedef int32_t(MI_CALL *init_fn)(const char *);
typedef int32_t(MI_CALL *call_sync_fn)(const char *, const char *, char *, int32_t *);
typedef int32_t(MI_CALL *call_async_fn)(const char *, const char *, int32_t, int64_t *);
typedef int32_t(MI_CALL *get_result_fn)(int64_t, char *, int32_t *);
typedef int32_t(MI_CALL *text_fn)(char *, int32_t *);
typedef int32_t(MI_CALL *shutdown_fn)(int32_t);
typedef int32_t(MI_CALL *abi_fn)(void);
typedef int32_t(MI_CALL *sm3_fn)(const char *, char *, int32_t *);
typedef int32_t(MI_CALL *identify_fn)(const char *, char *, int32_t *);

/* What the stand-in readers do from now on (sim/readers/fake_reader.c reads the file). */
static void reader_mode(const char *mode) {
    FILE *m = fopen("MI_FAKE_READER.txt", "wb");
    if (m != NULL) {
        fputs(mode, m);
        fclose(m);
    }
}

/* mi_identify(request) with the stand-in readers in `mode`: its code, the answer in
 * who[4096] and mi_last_error in err[4096]. */
static int32_t identify_in(identify_fn identify, text_fn last_error, const char *mode, const char *request, char *who,
                           char *err) {
    int32_t len = 4096, rc;
    reader_mode(mode);
    rc = identify(request, who, &len);
    len = 4096;
    last_error(err, &len);
    return rc;
}

/* The "data" object of an mi_identify answer (flat: no braces inside) as 1101's input. */
static int input_1101(const char *answer, char *input, size_t cap) {
    const char *p = strstr(answer, "\"data\":{"), *end;
    if (p == NULL) return 0;
    p += 7;
    end = strchr(p, '}');
    if (end == NULL || (size_t)(end - p) + 12 > cap) return 0;
    snprintf(input, cap, "{\"data\":%.*s}", (int)(end - p + 1), p);
    return 1;
}

static int passed = 0, failed = 0;
#define CHECK(c, w) do { if (c) passed++; else { failed++; fprintf(stderr, "FAIL: %s\n", w); } } while (0)

int main(int argc, char **argv) {
    static char config[8192], out[65536];
    int32_t len, rc;
    int64_t id = 0;
    int i;
    FILE *f;
    HMODULE dll = LoadLibraryA("mi_sdk.dll");
    const char *q = "{\"data\":{\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"440301199001011234\"}}";
    if (dll == NULL || argc != 3) { fprintf(stderr, "cannot load mi_sdk.dll\n"); return 2; }
    if (argv[1][0] == '@') {
        snprintf(config, sizeof config, "%s", argv[1] + 1);
        printf("code page %u\n", GetACP());
    } else {
        f = fopen(argv[1], "rb");
        if (f == NULL) return 2;
        config[fread(config, 1, sizeof config - 1, f)] = 0;
        fclose(f);
    }
    {
        init_fn mi_init = (init_fn)(void *)GetProcAddress(dll, "mi_init");
        call_sync_fn mi_call_sync = (call_sync_fn)(void *)GetProcAddress(dll, "mi_call_sync");
        call_async_fn mi_call_async = (call_async_fn)(void *)GetProcAddress(dll, "mi_call_async");
        get_result_fn mi_get_result = (get_result_fn)(void *)GetProcAddress(dll, "mi_get_result");
        text_fn mi_get_status = (text_fn)(void *)GetProcAddress(dll, "mi_get_status");
        text_fn mi_last_error = (text_fn)(void *)GetProcAddress(dll, "mi_last_error");
        shutdown_fn mi_shutdown = (shutdown_fn)(void *)GetProcAddress(dll, "mi_shutdown");
        abi_fn mi_abi_version = (abi_fn)(void *)GetProcAddress(dll, "mi_abi_version");
        sm3_fn mi_sm3_hex = (sm3_fn)(void *)GetProcAddress(dll, "mi_sm3_hex");
        identify_fn mi_identify = (identify_fn)(void *)GetProcAddress(dll, "mi_identify");
        CHECK(mi_init && mi_call_sync && mi_call_async && mi_get_result && mi_get_status && mi_last_error && mi_shutdown &&
                  mi_abi_version && mi_sm3_hex && mi_identify, "every export found by its plain name");
        if (failed) return 1;
        CHECK(mi_abi_version() == 1, "abi version");
        len = (int32_t)sizeof out;
        CHECK(mi_sm3_hex("abc", out, &len) == MI_OK && strncmp(out, "66c7f0f4", 8) == 0, "sm3");
        rc = mi_init(config);
        if (rc != MI_OK) {
            len = (int32_t)sizeof out;
            mi_last_error(out, &len);
            fprintf(stderr, "mi_init %d: %s\n", (int)rc, out);
            return 1;
        }
        if (GetFileAttributesA("NationECCode.dll") == INVALID_FILE_ATTRIBUTES) {
            static char who[4096];
            len = (int32_t)sizeof who;
            CHECK(mi_identify("{\"way\":\"ecard\"}", who, &len) == MI_E_CONFIG, "no reader configured: MI_E_CONFIG");
        } else {
            /* The patient shows the e-voucher: the reader DLL (GBK, __stdcall) read on a
             * thread of the library's own, its answer mapped into 1101's data. */
            static char who[4096], by_voucher[4096];
            len = (int32_t)sizeof who;
            rc = mi_identify("{\"way\":\"ecard\",\"business_type\":\"01101\"}", who, &len);
            if (rc != MI_OK) {
                len = (int32_t)sizeof out;
                mi_last_error(out, &len);
                fprintf(stderr, "mi_identify %d: %s\n", (int)rc, out);
            }
            CHECK(rc == MI_OK && strstr(who, "\"mdtrt_cert_type\":\"01\"") != NULL, "identified by the e-voucher reader DLL");
            CHECK(strstr(who, "\"psn_name\":\"\xE5\xBC\xA0\xE4\xB8\x89\"") != NULL, "the reader's GBK name read as UTF-8");
            CHECK(input_1101(who, by_voucher, sizeof by_voucher), "the identity is 1101's data");
            len = (int32_t)sizeof out;
            rc = mi_call_sync("1101", by_voucher, out, &len);
            CHECK(rc == MI_OK && strstr(out, "44030000000000100001") != NULL, "sync 1101 by the e-voucher over the network");
            len = (int32_t)sizeof who;
            rc = mi_identify("{\"way\":\"sscard\"}", who, &len);
            CHECK(rc == MI_OK && strstr(who, "\"mdtrt_cert_no\":\"A12345678\"") != NULL, "identified by the card reader DLL");
            len = (int32_t)sizeof who;
            rc = mi_identify("{\"way\":\"idcard\"}", who, &len);
            CHECK(rc == MI_OK && strstr(who, "\"mdtrt_cert_type\":\"02\"") != NULL, "identified by the ID card (ReadSFZ)");
            /* Each way a reader fails, as the cashier meets it. */
            static char err[4096];
            const char *any = "{\"way\":\"auto\"}", *ecard = "{\"way\":\"ecard\"}";
            rc = identify_in(mi_identify, mi_last_error, "absent", any, who, err);
            CHECK(rc == MI_E_BUSINESS && strstr(err, "ecard: ") && strstr(err, "sscard: "), "nobody there: every reader said no");
            rc = identify_in(mi_identify, mi_last_error, "wrong_pin", "{\"way\":\"sscard\"}", who, err);
            CHECK(rc == MI_E_BUSINESS, "a wrong PIN is the reader's no");
            rc = identify_in(mi_identify, mi_last_error, "garbage", ecard, who, err);
            CHECK(rc == MI_E_PROTOCOL, "garbage is MI_E_PROTOCOL");
            /* 100 bytes past the 64 KiB the library gives the e-voucher reader, into its guard. */
            rc = identify_in(mi_identify, mi_last_error, "overflow:65636", ecard, who, err);
            CHECK(rc == MI_E_PROTOCOL && strstr(err, "wrote past the end") != NULL, "an overrun is caught by the guard");
            /* A reader that never returns: abandoned after readers.timeout_ms, and passed over. */
            rc = identify_in(mi_identify, mi_last_error, "hang", ecard, who, err);
            CHECK(rc == MI_E_TIMEOUT, "a hung reader is abandoned");
            rc = identify_in(mi_identify, mi_last_error, "ok", any, who, err);
            CHECK(rc == MI_OK && strstr(who, "\"way\":\"sscard\"") && strstr(who, "MI_E_TIMEOUT"),
                  "auto passes over the hung reader to the card");
        }
        len = (int32_t)sizeof out;
        rc = mi_call_sync("1101", q, out, &len);
        CHECK(rc == MI_OK && strstr(out, "44030000000000100001") != NULL, "sync 1101 over the network from Windows");
        {
            static char input[2048], mdtrt_id[64];
            const char *psn = "44030000000000100001", *p;
            size_t k = 0;
            snprintf(input, sizeof input, "{\"input\":{\"data\":{\"psn_no\":\"%s\",\"insutype\":\"310\",\"ipt_otp_no\":\"WIN%s\"}},"
                     "\"insuplc_admdvs\":\"440300\"}", psn, argv[2]);
            len = (int32_t)sizeof out;
            CHECK(mi_call_sync("2201", input, out, &len) == MI_OK, "2201 register");
            p = strstr(out, "\"mdtrt_id\":\"");
            if (p != NULL) {
                p += 12;
                while (*p && *p != '"' && k < sizeof mdtrt_id - 1) mdtrt_id[k++] = *p++;
            }
            mdtrt_id[k] = 0;
            CHECK(k > 0, "mdtrt_id");
            snprintf(input, sizeof input, "{\"input\":{\"feedetail\":[{\"feedetl_sn\":\"1\",\"mdtrt_id\":\"%s\",\"psn_no\":\"%s\","
                     "\"chrg_bchno\":\"B\",\"med_list_codg\":\"X1\",\"det_item_fee_sumamt\":20.0,\"cnt\":2,\"pric\":10.0}]},"
                     "\"insuplc_admdvs\":\"440300\"}", mdtrt_id, psn);
            len = (int32_t)sizeof out;
            CHECK(mi_call_sync("2204", input, out, &len) == MI_OK, "2204 fee details");
            snprintf(input, sizeof input, "{\"input\":{\"data\":{\"psn_no\":\"%s\",\"mdtrt_id\":\"%s\",\"medfee_sumamt\":20.0,"
                     "\"acct_used_flag\":\"1\",\"med_type\":\"11\"}},\"insuplc_admdvs\":\"440300\"}", psn, mdtrt_id);
            len = (int32_t)sizeof out;
            CHECK(mi_call_sync("2206", input, out, &len) == MI_OK, "2206 pre-settle");
            len = (int32_t)sizeof out;
            CHECK(mi_call_sync("2207", input, out, &len) == MI_OK && strstr(out, "\"setl_id\":\"") != NULL, "2207 settle");
        }
        len = (int32_t)sizeof out;
        CHECK(mi_call_sync("11a1", q, out, &len) == MI_E_INVALID_ARGUMENT, "bad infno");
        CHECK(mi_call_async("1101", q, 0, &id) == MI_OK && id > 0, "async submit");
        for (i = 0; i < 1000; i++) {
            len = (int32_t)sizeof out;
            rc = mi_get_result(id, out, &len);
            if (rc != MI_PENDING) break;
            Sleep(10);
        }
        CHECK(rc == MI_OK, "async result");
        len = (int32_t)sizeof out;
        CHECK(mi_get_status(out, &len) == MI_OK && strstr(out, "\"workers\"") != NULL, "status");
        /* Shutdown with a send in flight (the simulator holds it at a gate), then
         * FreeLibrary at once, as the header advises: no thread of the library may
         * run on in unloaded code when the platform's answer comes. */
        {
            static char held[256];
            snprintf(held, sizeof held, "{\"data\":{\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"440301199001011234\"},"
                     "\"_sim\":{\"gate\":\"win%s\"}}", argv[2]);
            CHECK(mi_call_async("1101", held, 0, &id) == MI_OK, "async submit held at the gate");
            for (i = 0; i < 2000; i++) {
                len = (int32_t)sizeof out;
                if (mi_get_status(out, &len) == MI_OK && strstr(out, "\"workers_busy\":1") != NULL) break;
                Sleep(10);
            }
            CHECK(i < 2000, "a worker is sending the held request");
        }
        {
            /* How long the HIS's exit waits with a send blocked on the gateway: on
             * Windows up to gateway.timeout_ms (a blocked read is not woken). */
            DWORD t0 = GetTickCount();
            CHECK(mi_shutdown(300) == MI_OK, "shutdown");
            printf("mi_shutdown(300) took %lu ms\n", (unsigned long)(GetTickCount() - t0));
        }
    }
    CHECK(FreeLibrary(dll), "FreeLibrary after mi_shutdown");
    /* A reader thread was abandoned (the hang above): the library keeps itself loaded,
     * since that thread would come back into its code were the reader to return. */
    if (GetFileAttributesA("NationECCode.dll") != INVALID_FILE_ATTRIBUTES)
        CHECK(GetModuleHandleA("mi_sdk.dll") != NULL, "mi_sdk.dll stays loaded after a reader was abandoned");
    /* Tell the test to let the platform answer now, and give a stray thread time
     * to crash the process. */
    f = fopen("freed.txt", "wb");
    if (f != NULL) fclose(f);
    Sleep(2000);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
