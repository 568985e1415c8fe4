// mi_sdk for C#: P/Invoke declarations of the C ABI (Native) and a small client
// (MiClient) that handles buffers, charsets and codes.
//
// Works on .NET Framework 4.x (x86 and x64), .NET 6+ and mono. CallingConvention.Winapi
// is __stdcall on 32-bit Windows (what the DLL exports) and the platform default
// elsewhere. Strings cross the boundary as byte[] in the charset the config names, so
// GBK (code page 936) and UTF-8 both work on every runtime; for GBK on .NET Core /
// .NET 6+ register CodePagesEncodingProvider first, and under mono install
// libmono-i18n-cjk4.0-cil.
using System;
using System.Runtime.InteropServices;
using System.Text;

namespace MiSdk
{
    public static class Codes
    {
        public const int Ok = 0, Pending = 1, InvalidArgument = -1, NotInitialized = -2, BufferTooSmall = -3,
            Config = -4, Network = -5, Timeout = -6, Protocol = -7, Business = -8, Uncertain = -9, Journal = -10,
            NotFound = -11, Busy = -12, Shutdown = -13, Internal = -99;
    }

    public static class Native
    {
        const string Lib = "mi_sdk";
        const CallingConvention Cc = CallingConvention.Winapi;

        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_init(byte[] config);
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_call_sync(byte[] infno, byte[] input, byte[] output, ref int outputLen);
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_call_async(byte[] infno, byte[] input, int priority, out long requestId);
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_get_result(long requestId, byte[] output, ref int outputLen);
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_get_request(long requestId, byte[] output, ref int outputLen);
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_reverse(long requestId, byte[] output, ref int outputLen);
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_reconcile(byte[] request, byte[] output, ref int outputLen);
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_identify(byte[] request, byte[] output, ref int outputLen);
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_upload_file(byte[] path, byte[] output, ref int outputLen);
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_download_file(byte[] fileQuryNo, byte[] filename, byte[] destDir, byte[] output, ref int outputLen);
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_get_status(byte[] output, ref int outputLen);
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_last_error(byte[] output, ref int outputLen);
        [DllImport(Lib, CallingConvention = Cc)] public static extern long mi_last_request_id();
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_shutdown(int waitMs);
        [DllImport(Lib, CallingConvention = Cc)] public static extern IntPtr mi_version();
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_abi_version();
        [DllImport(Lib, CallingConvention = Cc)] public static extern IntPtr mi_code_name(int code);
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_sm3_hex(byte[] data, byte[] output, ref int outputLen);
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_sm4_encrypt_hex(byte[] mode, byte[] keyHex, byte[] ivHex, byte[] plaintext, byte[] output, ref int outputLen);
        [DllImport(Lib, CallingConvention = Cc)] public static extern int mi_sm4_decrypt_hex(byte[] mode, byte[] keyHex, byte[] ivHex, byte[] ciphertextHex, byte[] output, ref int outputLen);
    }

    /// <summary>A call's outcome: the MI_* code, the output JSON and the request id.</summary>
    public sealed class CallResult
    {
        public int Code;
        public string Output;
        public long RequestId;
    }

    /// <summary>A failure of a function that is not a call (init, status, lookups).</summary>
    public sealed class MiException : Exception
    {
        public readonly int Code;
        public MiException(int code, string message) : base(code + ": " + message) { Code = code; }
    }

    public sealed class MiClient
    {
        delegate int Fill(byte[] buf, ref int len);
        readonly Encoding enc;

        /// <param name="gbk">true when the config says "charset": "gbk".</param>
        public MiClient(bool gbk)
        {
            enc = gbk ? Encoding.GetEncoding(936) : new UTF8Encoding(false);
        }

        byte[] Z(string s) { return s == null ? null : enc.GetBytes(s + "\0"); }

        /// Runs a text-returning function with the buffer protocol, growing the buffer.
        int Read(Fill f, out string text)
        {
            int cap = 65536;
            while (true)
            {
                var buf = new byte[cap];
                int len = cap;
                int rc = f(buf, ref len);
                if (rc == Codes.BufferTooSmall) { cap = len + 1; continue; }
                text = len >= 0 && len < cap ? enc.GetString(buf, 0, len) : "";
                return rc;
            }
        }

        /// The text a function returns, or a MiException with its code and mi_last_error.
        string Text(Fill f)
        {
            string text;
            int rc = Read(f, out text);
            if (rc != Codes.Ok) throw new MiException(rc, LastError());
            return text;
        }

        /// config: inline JSON, a file path, or null. Read as UTF-8 by the library.
        public void Init(string config)
        {
            int rc = Native.mi_init(config == null ? null : Encoding.UTF8.GetBytes(config + "\0"));
            if (rc != Codes.Ok) throw new MiException(rc, LastError());
        }

        /// One call. A too-small buffer never repeats the call: the kept result is fetched.
        public CallResult CallSync(string infno, string input)
        {
            byte[] i = Z(infno), d = Z(input);
            return Once((byte[] b, ref int l) => Native.mi_call_sync(i, d, b, ref l));
        }

        /// Runs a call once: a too-small buffer is grown by fetching the kept result,
        /// never by calling again (that would send it twice).
        CallResult Once(Fill fn)
        {
            var buf = new byte[65536];
            int len = buf.Length;
            int rc = fn(buf, ref len);
            long id = Native.mi_last_request_id();
            if (rc == Codes.BufferTooSmall && id > 0) return GetResult(id);
            string text = len >= 0 && len < buf.Length ? enc.GetString(buf, 0, len) : "";
            return new CallResult { Code = rc, Output = text, RequestId = id };
        }

        public long CallAsync(string infno, string input, int priority)
        {
            long id;
            int rc = Native.mi_call_async(Z(infno), Z(input), priority, out id);
            if (rc != Codes.Ok) throw new MiException(rc, LastError());
            return id;
        }

        public CallResult GetResult(long requestId)
        {
            string text;
            int rc = Read((byte[] b, ref int l) => Native.mi_get_result(requestId, b, ref l), out text);
            return new CallResult { Code = rc, Output = text, RequestId = requestId };
        }

        public string GetRequest(long requestId)
        {
            string text;
            int rc = Read((byte[] b, ref int l) => Native.mi_get_request(requestId, b, ref l), out text);
            if (rc != Codes.Ok) throw new MiException(rc, LastError());
            return text;
        }

        public CallResult Reverse(long requestId)
        {
            string text;
            int rc = Read((byte[] b, ref int l) => Native.mi_reverse(requestId, b, ref l), out text);
            return new CallResult { Code = rc, Output = text, RequestId = Native.mi_last_request_id() };
        }

        /// The day's books with the platform. request: {"from":"yyyy-MM-dd","to":"yyyy-MM-dd","journals":[...]}
        /// ("to" and "journals" optional). Returns the report JSON ("balanced" true or false);
        /// throws MiException when it could not run (a bad request: Codes.InvalidArgument).
        /// Not Once (no request to fetch by id): a report too big for the buffer is kept by
        /// the library and handed over when the same request is asked again, as Read does.
        public string Reconcile(string request)
        {
            byte[] r = Z(request);
            return Text((byte[] b, ref int l) => Native.mi_reconcile(r, b, ref l));
        }

        /// Who the patient is, through the configured card and e-voucher readers. request:
        /// {"way":"ecard"|"sscard"|"idcard"|"auto","business_type":"01101"}. Returns the answer JSON,
        /// whose "data" is ready to be 1101's data; throws MiException when no reader identified
        /// the patient (Codes.Business: no card or QR code; Codes.Timeout: the reader hung).
        public string Identify(string request)
        {
            byte[] r = Z(request);
            return Text((byte[] b, ref int l) => Native.mi_identify(r, b, ref l));
        }

        /// 9101: uploads a file; the output names its file_qury_no.
        public CallResult UploadFile(string path)
        {
            byte[] p = Z(path);
            return Once((byte[] b, ref int l) => Native.mi_upload_file(p, b, ref l));
        }

        /// 9102: downloads and unpacks a file into destDir; the output lists the files.
        public CallResult DownloadFile(string fileQuryNo, string filename, string destDir)
        {
            byte[] q = Z(fileQuryNo), f = Z(filename), d = Z(destDir);
            return Once((byte[] b, ref int l) => Native.mi_download_file(q, f, d, b, ref l));
        }

        public string Status()
        {
            return Text((byte[] b, ref int l) => Native.mi_get_status(b, ref l));
        }

        public string Sm3Hex(string data)
        {
            string text;
            byte[] d = Z(data);
            int rc = Read((byte[] b, ref int l) => Native.mi_sm3_hex(d, b, ref l), out text);
            if (rc != Codes.Ok) throw new MiException(rc, LastError());
            return text;
        }

        public string LastError()
        {
            string text;
            Read((byte[] b, ref int l) => Native.mi_last_error(b, ref l), out text);
            return text;
        }

        public int Shutdown(int waitMs) { return Native.mi_shutdown(waitMs); }

        public static string Version() { return Marshal.PtrToStringAnsi(Native.mi_version()); }

        /// <summary>The name of a code, e.g. "MI_E_UNCERTAIN" for -9; "MI_UNKNOWN" for no code.</summary>
        public static string CodeName(int code) { return Marshal.PtrToStringAnsi(Native.mi_code_name(code)); }
    }
}
