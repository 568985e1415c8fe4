/* A stand-in for the card and e-voucher readers' libraries (NationECCode.dll,
 * HeaSecReadInfo.dll, SSCardDriver.dll), with the signatures their public callers
 * declare, for the tests of src/readers/. What it does is chosen by the environment
 * variable MI_FAKE_READER, or where that is not set by the first line of the file
 * MI_FAKE_READER.txt in the working folder (a Windows program under Wine changes it
 * between calls):
 *   ok          a person (张三, written in GBK, as these readers write)
 *   absent      no card / no e-voucher: the reader's "no"
 *   wrong_pin   the card's PIN refused
 *   garbage     text that is not what the reader should write
 *   overflow:N  N bytes of 'A' and no NUL (past the end of a smaller buffer)
 *   hang        never returns
 *   init_fail   HeaSecReadInfo's Init fails
 * The card reads answer only after a successful Init, as the real libraries do.
 * Built with -DSSCARD_DLL it is SSCard.dll instead of HeaSecReadInfo.dll: Init(url,
 * user), ReadCardBas(out, outLen, sign, signLen), ReadSFZ(out, outLen, sign, signLen).
 * Build: cc -shared -fPIC -o libfake_reader.so fake_reader.c
 *        i686-w64-mingw32-gcc -shared -Wl,--kill-at -o fake_reader.dll fake_reader.c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#define API __declspec(dllexport)
#define CALL __stdcall
#define SLEEP_FOREVER() Sleep(INFINITE)
#else
#include <unistd.h>
#define API __attribute__((visibility("default")))
#define CALL
#define SLEEP_FOREVER() for (;;) sleep(3600)
#endif

/* 张三 in GBK. */
#define ZHANG_SAN "\xD5\xC5\xC8\xFD"

static const char *mode(void) {
    static char line[64];
    const char *m = getenv("MI_FAKE_READER");
    FILE *f;
    if (m != NULL) return m;
    f = fopen("MI_FAKE_READER.txt", "rb");
    if (f == NULL) return "ok";
    if (fgets(line, sizeof line, f) == NULL) line[0] = 0;
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    return line[0] ? line : "ok";
}

static int is(const char *m) { return strcmp(mode(), m) == 0; }

/* Modes every call shares: 1 when handled (the output written). */
static int common(char *out) {
    if (strncmp(mode(), "overflow:", 9) == 0) {
        long n = strtol(mode() + 9, NULL, 10);
        memset(out, 'A', (size_t)n);
        return 1;
    }
    if (is("hang")) SLEEP_FOREVER();
    if (is("garbage")) {
        strcpy(out, "<html>502 Bad Gateway</html>");
        return 1;
    }
    return 0;
}

API const char *CALL NationEcTrans(const char *url, const char *input, char *output) {
    (void)url;
    if (common(output)) return "0000";
    if (is("absent")) {
        strcpy(output, "{\"code\":1,\"message\":\"\xCE\xB4\xBC\xEC\xB2\xE2\xB5\xBD\xB5\xE7\xD7\xD3\xC6\xBE\xD6\xA4\"}");
        return "1";
    }
    /* The request must name the transaction and the institution. */
    if (!strstr(input, "\"transType\":\"ec.query\"") || !strstr(input, "\"orgId\":\"H44030000001\"")) {
        strcpy(output, "{\"code\":2,\"message\":\"bad request\"}");
        return "2";
    }
    strcpy(output,
           "{\"code\":0,\"message\":\"ok\",\"data\":{\"ecToken\":\"440300EC0000000000000000001234\","
           "\"idNo\":\"440301199001011234\",\"idType\":\"01\",\"userName\":\"" ZHANG_SAN "\","
           "\"insuOrg\":\"440300\"}}");
    return "0000";
}

/* Whether Init succeeded. */
static int initialised = 0;

#ifndef SSCARD_DLL
API long CALL Init(const char *json, char *err) {
    if (is("init_fail") || !strstr(json, "\"IP\"")) {
        strcpy(err, "\xB6\xC1\xBF\xA8\xC6\xF7\xCE\xB4\xC1\xAC\xBD\xD3"); /* 读卡器未连接 */
        return -1;
    }
    initialised = 1;
    return 0;
}
#else
API long CALL Init(const char *url, const char *user) {
    if (is("init_fail") || strncmp(url, "http", 4) != 0 || user[0] == 0) return -1;
    initialised = 1;
    return 0;
}
#endif

static long card(char *info) {
    if (common(info)) return 0;
    if (is("absent")) {
        strcpy(info, "\xCE\xB4\xB2\xE5\xBF\xA8"); /* 未插卡 */
        return -11;
    }
    if (is("wrong_pin")) {
        strcpy(info, "\xC3\xDC\xC2\xEB\xB4\xED\xCE\xF3"); /* 密码错误 */
        return -2;
    }
    strcpy(info, "440300|440301199001011234|A12345678|440300D15600000500123456|" ZHANG_SAN
                 "|0081544C3A|3.00|20190101|20290101|T001|D001|");
    return 0;
}

/* A read before Init: the reader's "no". */
static long not_initialised(char *out) {
    strcpy(out, "\xCE\xB4\xB3\xF5\xCA\xBC\xBB\xAF"); /* 未初始化 */
    return -3;
}

static long id_card(char *info) {
    if (common(info)) return 0;
    if (is("absent")) {
        strcpy(info, "\xCE\xB4\xB7\xC5\xBF\xA8"); /* 未放卡 */
        return -1;
    }
    strcpy(info, ZHANG_SAN "|\xC4\xD0|\xBA\xBA|19900101|\xC9\xEE\xDB\xDA|440301199001011234|20200101|20400101|"
                 "\xC9\xEE\xDB\xDA\xCA\xD0\xB9\xAB\xB0\xB2\xBE\xD6|");
    return 0;
}

#ifndef SSCARD_DLL
API long CALL ReadCardBas(char *info, char *busi) {
    long rc = initialised ? card(info) : not_initialised(info);
    if (rc == 0 && is("ok")) strcpy(busi, "QkFTRTY0LWJ1c2k=");
    return rc;
}

API long CALL ReadSFZ(const char *photo, char *info, char *busi) {
    (void)photo;
    (void)busi;
    return initialised ? id_card(info) : not_initialised(info);
}
#else
/* SSCard.dll is told its buffers' sizes; it writes no more than they hold, except
 * in the overflow mode, which ignores them as a broken reader would. */
API long CALL ReadCardBas(char *out, int out_len, char *sign, int sign_len) {
    long rc;
    if (out_len < 256 || sign_len < 64) return -4;
    rc = initialised ? card(out) : not_initialised(out);
    if (rc == 0 && is("ok")) strcpy(sign, "U0lHTi1zc2NhcmQ=");
    return rc;
}

API long CALL ReadSFZ(char *out, int out_len, char *sign, int sign_len) {
    (void)sign;
    if (out_len < 256 || sign_len < 64) return -4;
    return initialised ? id_card(out) : not_initialised(out);
}
#endif

API long CALL iReadCardBas(int type, char *out) {
    if (type < 1 || type > 4) {
        strcpy(out, "bad type");
        return 1;
    }
    return card(out);
}
