"""mi_sdk for Python: a ctypes wrapper over the C ABI (no third-party dependency).

    from mi_sdk import MiSdk
    sdk = MiSdk()                      # finds libmi_sdk.so / mi_sdk.dll
    sdk.init("mi_sdk.json")            # or a dict, or None
    r = sdk.call_sync("1101", {"data": {...}})
    if r.code == MI_OK: print(r.output["output"]["baseinfo"])
    elif r.code == MI_E_BUSINESS: show(r.output["err_msg"])
    elif r.code == MI_E_UNCERTAIN: sdk.reverse(r.request_id)   # or query
    sdk.shutdown()

Every call returns a `Result(code, output, request_id)`; codes are the ABI's MI_*
constants below. Text goes through the charset the config names ("utf-8" or
"gbk"), so pass and receive Python str.
"""

import ctypes
import json
import os
import sys
from collections import namedtuple

MI_OK = 0
MI_PENDING = 1
MI_E_INVALID_ARGUMENT = -1
MI_E_NOT_INITIALIZED = -2
MI_E_BUFFER_TOO_SMALL = -3
MI_E_CONFIG = -4
MI_E_NETWORK = -5
MI_E_TIMEOUT = -6
MI_E_PROTOCOL = -7
MI_E_BUSINESS = -8
MI_E_UNCERTAIN = -9
MI_E_JOURNAL = -10
MI_E_NOT_FOUND = -11
MI_E_BUSY = -12
MI_E_SHUTDOWN = -13
MI_E_INTERNAL = -99

Result = namedtuple("Result", "code output request_id")


class MiError(Exception):
    """A failure of a function that is not a call (init, status, request lookup)."""

    def __init__(self, code, message):
        super().__init__("%d: %s" % (code, message))
        self.code = code
        self.message = message


def _find_library():
    env = os.environ.get("MI_SDK_LIB")
    if env:
        return env
    names = ["mi_sdk.dll"] if sys.platform == "win32" else ["libmi_sdk.dylib"] if sys.platform == "darwin" else ["libmi_sdk.so"]
    here = os.path.dirname(os.path.abspath(__file__))
    for folder in (here, os.getcwd()):
        for n in names:
            p = os.path.join(folder, n)
            if os.path.exists(p):
                return p
    return names[0]  # let the system loader search


class MiSdk:
    def __init__(self, library=None, charset="utf-8"):
        path = library or _find_library()
        # The exports are __stdcall on 32-bit Windows (WinDLL), cdecl elsewhere.
        self._lib = ctypes.WinDLL(path) if sys.platform == "win32" else ctypes.CDLL(path)
        self._encoding = "gb18030" if charset.lower() in ("gbk", "gb18030", "gb2312", "cp936") else "utf-8"
        L, c = self._lib, ctypes
        buf = (c.c_char_p, c.POINTER(c.c_int32))
        L.mi_init.argtypes, L.mi_init.restype = [c.c_char_p], c.c_int32
        L.mi_call_sync.argtypes, L.mi_call_sync.restype = [c.c_char_p, c.c_char_p, *buf], c.c_int32
        L.mi_call_async.argtypes = [c.c_char_p, c.c_char_p, c.c_int32, c.POINTER(c.c_int64)]
        L.mi_call_async.restype = c.c_int32
        for name in ("mi_get_result", "mi_get_request", "mi_reverse"):
            getattr(L, name).argtypes, getattr(L, name).restype = [c.c_int64, *buf], c.c_int32
        for name in ("mi_get_status", "mi_last_error"):
            getattr(L, name).argtypes, getattr(L, name).restype = list(buf), c.c_int32
        L.mi_reconcile.argtypes, L.mi_reconcile.restype = [c.c_char_p, *buf], c.c_int32
        L.mi_identify.argtypes, L.mi_identify.restype = [c.c_char_p, *buf], c.c_int32
        L.mi_upload_file.argtypes, L.mi_upload_file.restype = [c.c_char_p, *buf], c.c_int32
        L.mi_download_file.argtypes = [c.c_char_p, c.c_char_p, c.c_char_p, *buf]
        L.mi_download_file.restype = c.c_int32
        L.mi_sm3_hex.argtypes, L.mi_sm3_hex.restype = [c.c_char_p, *buf], c.c_int32
        for name in ("mi_sm4_encrypt_hex", "mi_sm4_decrypt_hex"):
            getattr(L, name).argtypes = [c.c_char_p, c.c_char_p, c.c_char_p, c.c_char_p, *buf]
            getattr(L, name).restype = c.c_int32
        L.mi_last_request_id.argtypes, L.mi_last_request_id.restype = [], c.c_int64
        L.mi_shutdown.argtypes, L.mi_shutdown.restype = [c.c_int32], c.c_int32
        L.mi_version.argtypes, L.mi_version.restype = [], c.c_char_p
        L.mi_abi_version.argtypes, L.mi_abi_version.restype = [], c.c_int32
        L.mi_code_name.argtypes, L.mi_code_name.restype = [c.c_int32], c.c_char_p

    # -- text at the boundary ------------------------------------------------------
    def _enc(self, text):
        if text is None:
            return None
        if isinstance(text, (dict, list)):
            text = json.dumps(text, ensure_ascii=False)
        return text.encode(self._encoding)

    def _read(self, fn, first=4096):
        """Runs fn(buf, len) with the ABI's buffer protocol, growing the buffer."""
        cap = first
        while True:
            buf = ctypes.create_string_buffer(cap)
            n = ctypes.c_int32(cap)
            rc = fn(buf, ctypes.byref(n))
            if rc != MI_E_BUFFER_TOO_SMALL:
                # *len is the text's length when something was written; untouched otherwise.
                written = 0 <= n.value < cap
                return rc, buf.raw[: n.value].decode(self._encoding) if written else ""
            cap = n.value + 1

    def _result(self, rc, text, request_id):
        try:
            out = json.loads(text) if text else {}
        except ValueError:
            out = {"infcode": -1, "err_msg": text}
        return Result(rc, out, request_id)

    # -- the ABI -------------------------------------------------------------------
    def init(self, config=None):
        """config: a dict, JSON text, a file path, or None (MI_SDK_CONFIG / mi_sdk.json)."""
        if isinstance(config, dict):
            config = json.dumps(config, ensure_ascii=False)
        rc = self._lib.mi_init(None if config is None else config.encode("utf-8"))
        if rc != MI_OK:
            raise MiError(rc, self.last_error())
        if isinstance(config, str) and config.lstrip().startswith("{"):
            cs = json.loads(config).get("charset", "utf-8")
            self._encoding = "gb18030" if cs.lower() == "gbk" else "utf-8"

    def _once(self, fn):
        """Runs a call fn(buf, len) once: a too-small buffer is grown by fetching the
        kept result, never by calling again (that would send it twice)."""
        buf = ctypes.create_string_buffer(65536)
        n = ctypes.c_int32(65536)
        rc = fn(buf, ctypes.byref(n))
        request_id = self._lib.mi_last_request_id()
        if rc == MI_E_BUFFER_TOO_SMALL and request_id > 0:
            return self.get_result(request_id)
        text = buf.raw[: n.value].decode(self._encoding) if 0 <= n.value < 65536 else ""
        return self._result(rc, text, request_id)

    def call_sync(self, infno, input):
        i, d = self._enc(infno), self._enc(input)
        return self._once(lambda b, n: self._lib.mi_call_sync(i, d, b, n))

    def call_async(self, infno, input, priority=0):
        rid = ctypes.c_int64(0)
        rc = self._lib.mi_call_async(self._enc(infno), self._enc(input), priority, ctypes.byref(rid))
        if rc != MI_OK:
            raise MiError(rc, self.last_error())
        return rid.value

    def get_result(self, request_id):
        rc, text = self._read(lambda b, n: self._lib.mi_get_result(request_id, b, n))
        return self._result(rc, text, request_id)

    def get_request(self, request_id):
        rc, text = self._read(lambda b, n: self._lib.mi_get_request(request_id, b, n))
        if rc != MI_OK:
            raise MiError(rc, self.last_error())
        return json.loads(text)

    def reverse(self, request_id):
        rc, text = self._read(lambda b, n: self._lib.mi_reverse(request_id, b, n))
        return self._result(rc, text, self._lib.mi_last_request_id())

    def upload_file(self, path):
        """9101: sends the file; the result's output names its file_qury_no."""
        return self._once(lambda b, n: self._lib.mi_upload_file(self._enc(path), b, n))

    def download_file(self, file_qury_no, filename, dest_dir):
        """9102: downloads and unpacks into dest_dir; output["files"] lists what was written."""
        q, f, d = self._enc(file_qury_no), self._enc(filename), self._enc(dest_dir)
        return self._once(lambda b, n: self._lib.mi_download_file(q, f, d, b, n))

    def reconcile(self, request):
        """The day's books with the platform. request: a dict such as
        {"from": "2026-11-30", "to": "2026-11-30", "journals": [...]} or its JSON text.
        Returns the report (a dict, report["balanced"] True or False); MiError when it could
        not run (a bad request is MI_E_INVALID_ARGUMENT)."""
        r = self._enc(request)
        # Not _once (no request to fetch by id): a report too big for the buffer is
        # kept by the library and handed over when the same request is asked again.
        rc, text = self._read(lambda b, n: self._lib.mi_reconcile(r, b, n), first=65536)
        if rc != MI_OK:
            raise MiError(rc, self.last_error())
        return json.loads(text)

    def identify(self, request=None):
        """Who the patient is, through the configured card and e-voucher readers.
        request: a dict such as {"way": "auto", "business_type": "01101"} or its JSON text;
        None is auto. Returns the answer (a dict): answer["data"] is ready to be 1101's data.
        MiError when no reader identified the patient (MI_E_BUSINESS: no card or QR code,
        MI_E_TIMEOUT: the reader hung, MI_E_CONFIG: no such reader configured)."""
        r = None if request is None else self._enc(request)
        # Room for any answer at once: one that does not fit is not kept, and asking
        # again reads the reader again.
        rc, text = self._read(lambda b, n: self._lib.mi_identify(r, b, n), first=65536)
        if rc != MI_OK:
            raise MiError(rc, self.last_error())
        return json.loads(text)

    def status(self):
        rc, text = self._read(lambda b, n: self._lib.mi_get_status(b, n))
        if rc != MI_OK:
            raise MiError(rc, self.last_error())
        return json.loads(text)

    def last_error(self):
        return self._read(lambda b, n: self._lib.mi_last_error(b, n))[1]

    def sm3_hex(self, text):
        rc, out = self._read(lambda b, n: self._lib.mi_sm3_hex(self._enc(text), b, n))
        if rc != MI_OK:
            raise MiError(rc, self.last_error())
        return out

    def shutdown(self, wait_ms=5000):
        return self._lib.mi_shutdown(wait_ms)

    def version(self):
        return self._lib.mi_version().decode("ascii")

    def abi_version(self):
        return self._lib.mi_abi_version()

    def code_name(self, code):
        """The name of a code, e.g. "MI_E_UNCERTAIN" for -9; "MI_UNKNOWN" for no code."""
        return self._lib.mi_code_name(code).decode("ascii")
