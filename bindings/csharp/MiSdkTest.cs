// The C# binding's test, run by tests/bindings.rs under mono against the simulator:
// mono MiSdkTest.exe <gateway-url> <work-dir> [<stand-in e-voucher reader library>].
// Prints "N passed, M failed".
using System;
using System.Globalization;
using System.IO;
using System.Threading;
using MiSdk;

static class MiSdkTest
{
    static int passed, failed;

    static void Check(bool ok, string what)
    {
        if (ok) passed++; else { failed++; Console.Error.WriteLine("FAIL: " + what); }
    }

    static string Config(string url, string work, string charset, string reader)
    {
        string readers = reader == null ? "" :
            ",\"readers\":{\"ecard\":{\"library\":\"" + reader.Replace("\\", "\\\\") +
            "\",\"url\":\"http://127.0.0.1:9/localcfc/api/hsecfc/localQrCodeQuery\"}}";
        return "{\"institution\":{\"fixmedins_code\":\"H44030000001\",\"fixmedins_name\":\"C# 测试医院\",\"mdtrtarea_admvs\":\"440300\"," +
               "\"opter\":\"0001\",\"opter_name\":\"收费员\"},\"gateway\":{\"url\":\"" + url + "\",\"timeout_ms\":5000}," +
               "\"charset\":\"" + charset + "\",\"journal\":{\"path\":\"" + Path.Combine(work, "cs_journal.db") + "\"}," +
               "\"log\":{\"dir\":\"" + Path.Combine(work, "cs_logs") + "\"}" + readers + "}";
    }

    /// The first value of "name" in a JSON text: a string's contents, or a number's or literal's text.
    static string Field(string json, string name)
    {
        string key = "\"" + name + "\":";
        int i = json.IndexOf(key, StringComparison.Ordinal);
        if (i < 0 || i + key.Length >= json.Length) return null;
        i += key.Length;
        bool quoted = json[i] == '"';
        if (quoted) i++;
        int end = quoted ? json.IndexOf('"', i) : json.IndexOfAny(new[] { ',', '}', ']' }, i);
        return end < 0 ? null : json.Substring(i, end - i);
    }

    /// The largest ours.fixmedins_setl_cnt of a reconciliation report's groups; -1 with no group.
    static int MostSettled(string report)
    {
        int most = -1;
        for (int i = report.IndexOf("\"ours\":{", StringComparison.Ordinal); i >= 0;
             i = report.IndexOf("\"ours\":{", i + 1, StringComparison.Ordinal))
        {
            string ours = report.Substring(i, report.IndexOf('}', i) - i + 1);
            int n;
            if (int.TryParse(Field(ours, "fixmedins_setl_cnt"), out n) && n > most) most = n;
        }
        return most;
    }

    /// A transaction's input as the platform takes it: the input and the insured's area.
    static string PerCall(string input) { return "{\"input\":" + input + ",\"insuplc_admdvs\":\"440300\"}"; }

    const string Psn = "44030000000000100001";
    const string Q1101 = "{\"data\":{\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"440301199001011234\",\"psn_name\":\"张三\"}}";

    static int Main(string[] args)
    {
        string url = args[0], work = args[1], reader = args.Length > 2 ? args[2] : null;
        Check(Native.mi_abi_version() == 1, "abi version");
        Check(MiClient.Version().Length >= 5, "version");
        Check(MiClient.CodeName(-9) == "MI_E_UNCERTAIN" && MiClient.CodeName(42) == "MI_UNKNOWN", "code names");
        foreach (var charset in new[] { "utf-8", "gbk" })
        {
            var c = new MiClient(charset == "gbk");
            c.Init(Config(url, work, charset, reader));
            try
            {
                string who = c.Identify("{\"way\":\"ecard\"}");
                Check(reader != null, charset + ": identified without a reader");
                Check(Field(who, "mdtrt_cert_type") == "01" && who.Contains("\"psn_name\":\"张三\""),
                      charset + ": identified by the e-voucher, the name in the charset " + who);
            }
            catch (MiException e) { Check(reader == null && e.Code == Codes.Config, charset + ": identify " + e.Message); }
            try { c.Identify("{\"way\":\"face\"}"); Check(false, charset + ": an unknown way throws"); }
            catch (MiException e) { Check(e.Code == Codes.InvalidArgument, charset + ": unknown way code " + e.Message); }
            var r = c.CallSync("1101", Q1101);
            Check(r.Code == Codes.Ok, charset + ": 1101 " + r.Output);
            Check(r.Output.Contains("\"psn_name\":\"张三\""), charset + ": the name survives the charset");
            Check(r.Output.Contains("深圳市示例科技有限公司"), charset + ": Chinese output decoded");
            var bad = c.CallSync("1101", "{\"data\":{\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"0\"}}");
            Check(bad.Code == Codes.Business && bad.Output.Contains("未查询到"), charset + ": business error shown as is");
            Check(c.LastError().Contains("未查询到"), charset + ": last error in the charset");
            long id = c.CallAsync("1101", Q1101, 1);
            var res = c.GetResult(id);
            for (int i = 0; i < 500 && res.Code == Codes.Pending; i++) { Thread.Sleep(10); res = c.GetResult(id); }
            Check(res.Code == Codes.Ok, charset + ": async result");
            Check(c.GetRequest(id).Contains("\"state\":\"succeeded\""), charset + ": request record");
            Check(c.CallSync("11a1", Q1101).Code == Codes.InvalidArgument, charset + ": bad infno");
            Check(c.Status().Contains("\"charset\":\"" + charset + "\""), charset + ": status");
            Check(c.Sm3Hex("abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0", charset + ": sm3");
            try { c.GetRequest(987654321); Check(false, "unknown id throws"); }
            catch (MiException e) { Check(e.Code == Codes.NotFound, charset + ": not found code"); }

            // Settle a visit (fees, then 2207) so that today's books hold a settlement.
            var reg = c.CallSync("2201", PerCall("{\"data\":{\"psn_no\":\"" + Psn + "\",\"insutype\":\"310\",\"ipt_otp_no\":\"CS-" +
                charset + "\"}}"));
            string mdtrt = Field(reg.Output, "mdtrt_id");
            Check(reg.Code == Codes.Ok && !string.IsNullOrEmpty(mdtrt), charset + ": 2201 " + reg.Output);
            var fee = c.CallSync("2204", PerCall("{\"feedetail\":[{\"feedetl_sn\":\"1\",\"mdtrt_id\":\"" + mdtrt + "\",\"psn_no\":\"" + Psn +
                "\",\"chrg_bchno\":\"B\",\"med_list_codg\":\"X1\",\"det_item_fee_sumamt\":12.5,\"cnt\":1,\"pric\":12.5}]}"));
            Check(fee.Code == Codes.Ok, charset + ": 2204 " + fee.Output);
            var setl = c.CallSync("2207", PerCall("{\"data\":{\"psn_no\":\"" + Psn + "\",\"mdtrt_id\":\"" + mdtrt +
                "\",\"medfee_sumamt\":12.5,\"acct_used_flag\":\"1\",\"med_type\":\"11\"}}"));
            Check(setl.Code == Codes.Ok && Field(setl.Output, "setl_id") != null, charset + ": 2207 " + setl.Output);
            string today = DateTime.Now.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            try
            {
                string report = c.Reconcile("{\"from\":\"" + today + "\"}");
                Check(Field(report, "balanced") == "true", charset + ": today's books balance " + report);
                Check(report.Contains("\"groups\":["), charset + ": the report has groups " + report);
                Check(MostSettled(report) >= 1, charset + ": today's settlement is in our books " + report);
            }
            catch (MiException e) { Check(false, charset + ": reconcile " + e.Message); }
            try { c.Reconcile("{\"from\":\"2026-13-01\"}"); Check(false, charset + ": a bad date throws"); }
            catch (MiException e)
            {
                Check(e.Code == Codes.InvalidArgument && e.Message.Contains("2026-13-01"), charset + ": bad date code " + e.Message);
            }
            c.Shutdown(2000);
        }
        Console.WriteLine(passed + " passed, " + failed + " failed");
        return failed == 0 ? 0 : 1;
    }
}
