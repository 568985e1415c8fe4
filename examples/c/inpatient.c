/* An inpatient stay in C: admission (2401), a fee upload per day (2301),
 * pre-settlement (2303), settlement (2304), discharge (2402). Each step checks its
 * code. An uncertain step (MI_E_UNCERTAIN) is never repeated: an uncertain settlement
 * is reversed (2601); any other is left for the operator to check and undo by its
 * counter-transaction (2302 for fees, 2404 for the admission, 2405 for a discharge).
 * Build as examples/c/basic.c; run: ./inpatient mi_sdk.json [ipt_no] */
#include "mi_sdk.h"

#include <stdio.h>
#include <string.h>

static char out[65536];

/* One sync call; prints what went wrong and returns non-zero unless MI_OK. */
static int call(const char *infno, const char *input) {
    int32_t len = (int32_t)sizeof out;
    int32_t rc = mi_call_sync(infno, input, out, &len);
    if (rc == MI_OK) return 0;
    if (rc == MI_E_UNCERTAIN) { /* it may have gone through: never send it again */
        int64_t id = mi_last_request_id();
        if (strcmp(infno, "2304") == 0) { /* a settlement: undo it with 2601 */
            len = (int32_t)sizeof out;
            fprintf(stderr, "2304 uncertain (request %lld): reversing -> %d\n", (long long)id,
                    (int)mi_reverse(id, out, &len));
        } else {
            fprintf(stderr, "%s uncertain (request %lld): check it and undo it by its counter-transaction\n",
                    infno, (long long)id);
        }
        return 1;
    }
    fprintf(stderr, "%s failed (%d): %s\n", infno, (int)rc, rc == MI_E_BUFFER_TOO_SMALL ? "buffer too small" : out);
    return 1;
}

/* Copies the string value of "key" in the last output into dst (a tiny reader for
 * flat keys; a HIS would use its JSON library). */
static int value_of(const char *key, char *dst, size_t cap) {
    char pattern[64];
    const char *p, *end;
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    p = strstr(out, pattern);
    if (!p) return 1;
    p += strlen(pattern);
    end = strchr(p, '"');
    if (!end || (size_t)(end - p) >= cap) return 1;
    memcpy(dst, p, (size_t)(end - p));
    dst[end - p] = '\0';
    return 0;
}

#define PSN "44030000000000100001"
#define CERT "440301199001011234"
#define PERSON(input) "{\"insuplc_admdvs\":\"440300\",\"input\":" input "}"

int main(int argc, char **argv) {
    static char input[8192];
    char mdtrt_id[64], setl_id[64];
    const char *ipt_no = argc > 2 ? argv[2] : "ZY-C-0001";
    int day;
    if (mi_init(argc > 1 ? argv[1] : NULL) != MI_OK) {
        int32_t len = (int32_t)sizeof out;
        mi_last_error(out, &len);
        fprintf(stderr, "mi_init: %s\n", out);
        return 1;
    }
    snprintf(input, sizeof input,
             PERSON("{\"mdtrtinfo\":{\"psn_no\":\"" PSN "\",\"insutype\":\"310\",\"begntime\":\"2026-11-23 09:00:00\","
                    "\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"" CERT "\",\"med_type\":\"21\",\"ipt_no\":\"%s\","
                    "\"atddr_no\":\"D0002\",\"chfpdr_name\":\"Wang\",\"adm_diag_dscr\":\"pneumonia\","
                    "\"adm_dept_codg\":\"A03\",\"adm_dept_name\":\"respiratory\",\"adm_bed\":\"12\","
                    "\"dscg_maindiag_code\":\"J18.900\",\"dscg_maindiag_name\":\"pneumonia\"},\"diseinfo\":[]}"),
             ipt_no);
    if (call("2401", input) || value_of("mdtrt_id", mdtrt_id, sizeof mdtrt_id)) goto fail;
    printf("admitted: mdtrt_id %s\n", mdtrt_id);
    for (day = 1; day <= 3; day++) { /* 45.00 bed + 2 x 38.60 drug = 122.20 a day */
        snprintf(input, sizeof input,
                 PERSON("{\"feedetail\":[{\"feedetl_sn\":\"%s-%d-1\",\"mdtrt_id\":\"%s\",\"psn_no\":\"" PSN "\","
                        "\"med_type\":\"21\",\"fee_ocur_time\":\"2026-11-2%d 10:00:00\",\"med_list_codg\":\"001110000010000\","
                        "\"det_item_fee_sumamt\":45.0,\"cnt\":1,\"pric\":45.0},"
                        "{\"feedetl_sn\":\"%s-%d-2\",\"mdtrt_id\":\"%s\",\"psn_no\":\"" PSN "\",\"med_type\":\"21\","
                        "\"fee_ocur_time\":\"2026-11-2%d 10:00:00\",\"med_list_codg\":\"XJ01DCA021B002010100580\","
                        "\"det_item_fee_sumamt\":77.2,\"cnt\":2,\"pric\":38.6}]}"),
                 ipt_no, day, mdtrt_id, day + 2, ipt_no, day, mdtrt_id, day + 2);
        if (call("2301", input)) goto fail;
        printf("fees of day %d uploaded\n", day);
    }
    snprintf(input, sizeof input,
             PERSON("{\"data\":{\"psn_no\":\"" PSN "\",\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"" CERT "\","
                    "\"mdtrt_id\":\"%s\",\"medfee_sumamt\":366.6,\"psn_setlway\":\"01\",\"insutype\":\"310\","
                    "\"acct_used_flag\":\"1\",\"mid_setl_flag\":\"0\"}}"),
             mdtrt_id);
    if (call("2303", input)) goto fail;
    if (call("2304", input) || value_of("setl_id", setl_id, sizeof setl_id)) goto fail;
    printf("settled: setl_id %s\n", setl_id);
    snprintf(input, sizeof input,
             PERSON("{\"dscginfo\":{\"mdtrt_id\":\"%s\",\"psn_no\":\"" PSN "\",\"insutype\":\"310\","
                    "\"endtime\":\"2026-11-26 10:00:00\",\"dscg_way\":\"1\"}}"),
             mdtrt_id);
    if (call("2402", input)) goto fail;
    printf("discharged\n");
    mi_shutdown(5000);
    return 0;
fail:
    mi_shutdown(5000);
    return 1;
}
