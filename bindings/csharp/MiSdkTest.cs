// The C# binding's test, run by tests/bindings.rs under mono against the simulator:
// mono MiSdkTest.exe <gateway-url> <work-dir>. Prints "N passed, M failed".
using System;
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

    static string Config(string url, string work, string charset)
    {
        return "{\"institution\":{\"fixmedins_code\":\"H44030000001\",\"fixmedins_name\":\"C# 测试医院\",\"mdtrtarea_admvs\":\"440300\"," +
               "\"opter\":\"0001\",\"opter_name\":\"收费员\"},\"gateway\":{\"url\":\"" + url + "\",\"timeout_ms\":5000}," +
               "\"charset\":\"" + charset + "\",\"journal\":{\"path\":\"" + Path.Combine(work, "cs_journal.db") + "\"}," +
               "\"log\":{\"dir\":\"" + Path.Combine(work, "cs_logs") + "\"}}";
    }

    const string Q1101 = "{\"data\":{\"mdtrt_cert_type\":\"02\",\"mdtrt_cert_no\":\"440301199001011234\",\"psn_name\":\"张三\"}}";

    static int Main(string[] args)
    {
        string url = args[0], work = args[1];
        Check(Native.mi_abi_version() == 1, "abi version");
        Check(MiClient.Version().Length >= 5, "version");
        Check(MiClient.CodeName(-9) == "MI_E_UNCERTAIN" && MiClient.CodeName(42) == "MI_UNKNOWN", "code names");
        foreach (var charset in new[] { "utf-8", "gbk" })
        {
            var c = new MiClient(charset == "gbk");
            c.Init(Config(url, work, charset));
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
            c.Shutdown(2000);
        }
        Console.WriteLine(passed + " passed, " + failed + " failed");
        return failed == 0 ? 0 : 1;
    }
}
