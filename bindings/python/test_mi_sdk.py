"""Tests of the Python binding against a running mi-sim (unittest, stdlib only).

Run by tests/bindings.rs with MI_SDK_LIB (the built library), MI_SIM_URL (the
simulator's service URL), MI_WORK (a temp folder) and MI_FAKE_READER_LIB (the
stand-in reader library, sim/readers/fake_reader.c) in the environment."""

import hashlib
import json
import os
import time
import unittest

import mi_sdk
from mi_sdk import MiSdk, MiError

URL = os.environ["MI_SIM_URL"]
WORK = os.environ["MI_WORK"]
Q1101 = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234", "psn_name": "张三"}}


def config(**extra):
    c = {
        "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "Python 测试医院", "mdtrtarea_admvs": "440300",
                        "opter": "0001", "opter_name": "收费员"},
        "gateway": {"url": URL, "timeout_ms": 5000},
        "journal": {"path": os.path.join(WORK, "py_journal.db")},
        "log": {"dir": os.path.join(WORK, "py_logs")},
    }
    c.update(extra)
    return c


class BindingTest(unittest.TestCase):
    def setUp(self):
        self.sdk = MiSdk()

    def tearDown(self):
        self.sdk.shutdown(2000)

    def test_versions_and_not_initialized(self):
        self.assertEqual(self.sdk.abi_version(), 1)
        self.assertEqual((self.sdk.code_name(-9), self.sdk.code_name(42)), ("MI_E_UNCERTAIN", "MI_UNKNOWN"))
        self.assertRegex(self.sdk.version(), r"^\d+\.\d+\.\d+$")
        r = self.sdk.call_sync("1101", Q1101)
        self.assertEqual(r.code, mi_sdk.MI_E_NOT_INITIALIZED)
        with self.assertRaises(MiError) as e:
            self.sdk.init({"institution": {}})
        self.assertEqual(e.exception.code, mi_sdk.MI_E_CONFIG)

    def test_sync_async_and_records(self):
        self.sdk.init(config())
        r = self.sdk.call_sync("1101", Q1101)
        self.assertEqual(r.code, mi_sdk.MI_OK, r.output)
        self.assertEqual(r.output["output"]["baseinfo"]["psn_name"], "张三")
        self.assertGreater(r.request_id, 0)
        psn = r.output["output"]["baseinfo"]["psn_no"]
        reg = self.sdk.call_sync("2201", {"input": {"data": {"psn_no": psn, "insutype": "310", "ipt_otp_no": "PY%d" % time.time_ns()}},
                                          "insuplc_admdvs": "440300"})
        self.assertEqual(reg.code, mi_sdk.MI_OK, reg.output)
        # Settle the visit (fees, then 2207) so that today's books hold a settlement.
        mdtrt = reg.output["output"]["data"]["mdtrt_id"]
        line = {"feedetl_sn": "1", "mdtrt_id": mdtrt, "psn_no": psn, "chrg_bchno": "B", "med_list_codg": "X1",
                "det_item_fee_sumamt": 12.5, "cnt": 1, "pric": 12.5}
        fee = self.sdk.call_sync("2204", {"input": {"feedetail": [line]}, "insuplc_admdvs": "440300"})
        self.assertEqual(fee.code, mi_sdk.MI_OK, fee.output)
        setl = {"psn_no": psn, "mdtrt_id": mdtrt, "medfee_sumamt": 12.5, "acct_used_flag": "1", "med_type": "11"}
        setl = self.sdk.call_sync("2207", {"input": {"data": setl}, "insuplc_admdvs": "440300"})
        self.assertEqual(setl.code, mi_sdk.MI_OK, setl.output)
        report = self.sdk.reconcile({"from": time.strftime("%Y-%m-%d")})
        self.assertIs(report["balanced"], True, report)
        self.assertTrue(any(g["ours"]["fixmedins_setl_cnt"] >= 1 for g in report["groups"]), report)
        with self.assertRaises(MiError) as e:
            self.sdk.reconcile('{"from":"2026-13-01"}')
        self.assertEqual(e.exception.code, mi_sdk.MI_E_INVALID_ARGUMENT)
        self.assertIn("2026-13-01", self.sdk.last_error())
        bad = self.sdk.call_sync("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "0"}})
        self.assertEqual(bad.code, mi_sdk.MI_E_BUSINESS)
        self.assertIn("未查询到", bad.output["err_msg"])
        ids = [self.sdk.call_async("1101", Q1101, priority=i % 2) for i in range(10)]
        for rid in ids:
            deadline = time.time() + 10
            res = self.sdk.get_result(rid)
            while res.code == mi_sdk.MI_PENDING and time.time() < deadline:
                time.sleep(0.01)
                res = self.sdk.get_result(rid)
            self.assertEqual(res.code, mi_sdk.MI_OK)
            self.assertEqual(self.sdk.get_request(rid)["state"], "succeeded")
        st = self.sdk.status()
        self.assertEqual(st["gateway"]["url"], URL)
        self.assertGreaterEqual(st["counts"]["succeeded"], 12)

    def test_upload_and_download_a_file(self):
        self.sdk.init(config())
        doc = os.path.join(WORK, "清单.txt")
        with open(doc, "wb") as f:
            f.write("第一行\n".encode("utf-8") * 1000)
        up = self.sdk.upload_file(doc)
        self.assertEqual(up.code, mi_sdk.MI_OK, up.output)
        no = up.output["output"]["file_qury_no"]
        dest = os.path.join(WORK, "py_download")
        down = self.sdk.download_file(no, "清单.txt", dest)
        self.assertEqual(down.code, mi_sdk.MI_OK, down.output)
        [written] = down.output["output"]["files"]
        with open(written["path"], "rb") as f, open(doc, "rb") as g:
            self.assertEqual(f.read(), g.read())

    def test_identify_by_the_e_voucher_then_1101(self):
        reader = os.environ["MI_FAKE_READER_LIB"]
        url = "http://127.0.0.1:9/localcfc/api/hsecfc/localQrCodeQuery"
        for charset in ("utf-8", "gbk"):
            sdk = MiSdk(charset=charset)
            try:
                sdk.init(config(charset=charset, readers={"ecard": {"library": reader, "url": url}}))
                who = sdk.identify({"way": "ecard", "business_type": "01101"})
                self.assertEqual(who["data"]["mdtrt_cert_type"], "01")
                self.assertEqual(who["data"]["psn_name"], "张三")
                self.assertNotIn("440301199001011234", who["raw"])
                r = sdk.call_sync("1101", {"data": who["data"]})
                self.assertEqual(r.code, mi_sdk.MI_OK, r.output)
                self.assertEqual(r.output["output"]["baseinfo"]["certno"], "440301199001011234")
                with self.assertRaises(MiError) as e:
                    sdk.identify({"way": "sscard"})
                self.assertEqual(e.exception.code, mi_sdk.MI_E_CONFIG)
                with self.assertRaises(MiError) as e:
                    sdk.identify('{"way": "face"}')
                self.assertEqual(e.exception.code, mi_sdk.MI_E_INVALID_ARGUMENT)
            finally:
                sdk.shutdown(2000)

    def test_bad_input_codes(self):
        self.sdk.init(config())
        self.assertEqual(self.sdk.call_sync("11a1", Q1101).code, mi_sdk.MI_E_INVALID_ARGUMENT)
        self.assertEqual(self.sdk.call_sync("1101", "[1]").code, mi_sdk.MI_E_INVALID_ARGUMENT)
        self.assertIn("JSON object", self.sdk.last_error())
        with self.assertRaises(MiError) as e:
            self.sdk.get_request(987654321)
        self.assertEqual(e.exception.code, mi_sdk.MI_E_NOT_FOUND)

    def test_large_output_grows_the_buffer_without_calling_twice(self):
        self.sdk.init(config())
        big = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234"}, "pad": "x" * 100000}
        r = self.sdk.call_sync("1101", big)
        self.assertEqual(r.code, mi_sdk.MI_OK)
        self.assertEqual(self.sdk.get_request(r.request_id)["attempts"], 1)

    def test_gbk(self):
        self.sdk.init(json.dumps(config(charset="gbk"), ensure_ascii=False))
        r = self.sdk.call_sync("1101", Q1101)
        self.assertEqual(r.code, mi_sdk.MI_OK, r.output)
        self.assertEqual(r.output["output"]["insuinfo"][0]["emp_name"], "深圳市示例科技有限公司")
        # The text is hashed as UTF-8 whatever the charset: the platform's encoding.
        self.assertEqual(self.sdk.sm3_hex("abc"), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
        try:
            expected = hashlib.new("sm3", "张三".encode("utf-8")).hexdigest()
        except ValueError:  # a Python without SM3 in its OpenSSL
            expected = None
        if expected:
            self.assertEqual(self.sdk.sm3_hex("张三"), expected)
        bad = self.sdk.call_sync("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "0"}})
        self.assertIn("未查询到", bad.output["err_msg"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
