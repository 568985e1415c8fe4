$PBExportHeader$n_mi_sdk.sru
$PBExportComments$mi_sdk for PowerBuilder 10 and later: declarations with ;Ansi aliases and buffer handling
forward
global type n_mi_sdk from nonvisualobject
end type
end forward

global type n_mi_sdk from nonvisualobject autoinstantiate
end type

type prototypes
// The C ABI of mi_sdk.dll (stdcall, plain export names). PB 10+ strings are Unicode;
// the ;Ansi aliases pass them as ANSI (the system code page: GBK on Chinese Windows),
// so configure "charset": "gbk". PowerBuilder 9: use mi_sdk_pb9.txt instead.
FUNCTION long mi_init(string config) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_init;Ansi"
FUNCTION long mi_call_sync(string infno, string input, ref string output, ref long output_len) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_call_sync;Ansi"
FUNCTION long mi_call_async(string infno, string input, long priority, ref longlong request_id) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_call_async;Ansi"
FUNCTION long mi_get_result(longlong request_id, ref string output, ref long output_len) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_get_result;Ansi"
FUNCTION long mi_get_request(longlong request_id, ref string output, ref long output_len) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_get_request;Ansi"
FUNCTION long mi_reverse(longlong request_id, ref string output, ref long output_len) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_reverse;Ansi"
FUNCTION long mi_reconcile(string request, ref string output, ref long output_len) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_reconcile;Ansi"
FUNCTION long mi_identify(string request, ref string output, ref long output_len) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_identify;Ansi"
FUNCTION long mi_upload_file(string path, ref string output, ref long output_len) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_upload_file;Ansi"
FUNCTION long mi_download_file(string file_qury_no, string filename, string dest_dir, ref string output, ref long output_len) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_download_file;Ansi"
FUNCTION long mi_get_status(ref string output, ref long output_len) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_get_status;Ansi"
FUNCTION long mi_last_error(ref string output, ref long output_len) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_last_error;Ansi"
FUNCTION longlong mi_last_request_id() LIBRARY "mi_sdk.dll"
FUNCTION long mi_shutdown(long wait_ms) LIBRARY "mi_sdk.dll"
FUNCTION string mi_version() LIBRARY "mi_sdk.dll" ALIAS FOR "mi_version;Ansi"
FUNCTION long mi_abi_version() LIBRARY "mi_sdk.dll"
FUNCTION string mi_code_name(long code) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_code_name;Ansi"
FUNCTION long mi_sm3_hex(string data, ref string output, ref long output_len) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_sm3_hex;Ansi"
FUNCTION long mi_sm4_encrypt_hex(string mode, string key_hex, string iv_hex, string plaintext, ref string output, ref long output_len) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_sm4_encrypt_hex;Ansi"
FUNCTION long mi_sm4_decrypt_hex(string mode, string key_hex, string iv_hex, string ciphertext_hex, ref string output, ref long output_len) LIBRARY "mi_sdk.dll" ALIAS FOR "mi_sm4_decrypt_hex;Ansi"
end prototypes

type variables
// The codes of the C ABI (docs/api_reference.md, "Codes"); mi_code_name gives their names.
constant long MI_OK = 0
constant long MI_PENDING = 1
constant long MI_E_INVALID_ARGUMENT = -1
constant long MI_E_NOT_INITIALIZED = -2
constant long MI_E_BUFFER_TOO_SMALL = -3
constant long MI_E_CONFIG = -4
constant long MI_E_NETWORK = -5
constant long MI_E_TIMEOUT = -6
constant long MI_E_PROTOCOL = -7
constant long MI_E_BUSINESS = -8
constant long MI_E_UNCERTAIN = -9
constant long MI_E_JOURNAL = -10
constant long MI_E_NOT_FOUND = -11
constant long MI_E_BUSY = -12
constant long MI_E_SHUTDOWN = -13
constant long MI_E_INTERNAL = -99
end variables

forward prototypes
public function long of_init (string as_config)
public function long of_call_sync (string as_infno, string as_input, ref string as_output, ref longlong al_request_id)
public function long of_get_result (longlong al_request_id, ref string as_output)
public function long of_reconcile (string as_request, ref string as_report)
public function long of_identify (string as_request, ref string as_identity)
public function string of_last_error ()
end prototypes

public function long of_init (string as_config);
// as_config: inline JSON, a path to mi_sdk.json, or "" (then mi_sdk.json beside the DLL).
if as_config = "" then setnull(as_config)
return mi_init(as_config)
end function

public function long of_call_sync (string as_infno, string as_input, ref string as_output, ref longlong al_request_id);
// One call. MI_E_BUSINESS: show the err_msg in as_output. MI_E_UNCERTAIN: reverse or query.
// A too-small buffer never repeats the call: the kept result is fetched.
long ll_len, ll_rc
ll_len = 65536
as_output = Space(ll_len)
ll_rc = mi_call_sync(as_infno, as_input, as_output, ll_len)
al_request_id = mi_last_request_id()
if ll_rc = MI_E_BUFFER_TOO_SMALL and al_request_id > 0 then
	return of_get_result(al_request_id, as_output)
end if
return ll_rc
end function

public function long of_get_result (longlong al_request_id, ref string as_output);
long ll_len, ll_rc
ll_len = 65536
do
	as_output = Space(ll_len)
	ll_rc = mi_get_result(al_request_id, as_output, ll_len)
	if ll_rc = MI_E_BUFFER_TOO_SMALL then ll_len = ll_len + 1
loop while ll_rc = MI_E_BUFFER_TOO_SMALL
return ll_rc
end function

public function long of_reconcile (string as_request, ref string as_report);
// The day's books with the platform. as_request: {"from":"yyyy-MM-dd","to":"yyyy-MM-dd","journals":[...]}
// ("to" and "journals" optional). MI_OK with the report JSON in as_report whether or not
// the books balance. A report too big for the buffer is kept by the library and
// handed over when the same request is asked again, as this loop does.
long ll_len, ll_rc
ll_len = 65536
do
	as_report = Space(ll_len)
	ll_rc = mi_reconcile(as_request, as_report, ll_len)
	if ll_rc = MI_E_BUFFER_TOO_SMALL then ll_len = ll_len + 1
loop while ll_rc = MI_E_BUFFER_TOO_SMALL
return ll_rc
end function

public function long of_identify (string as_request, ref string as_identity);
// Who the patient is, through the configured card and e-voucher readers.
// as_request: {"way":"ecard"|"sscard"|"idcard"|"auto","business_type":"01101"}.
// MI_OK with the answer JSON in as_identity, whose "data" is ready to be 1101's data.
// The buffer has room for any answer at once: one that does not fit is not kept, and
// asking again reads the reader again.
long ll_len, ll_rc
ll_len = 65536
do
	as_identity = Space(ll_len)
	ll_rc = mi_identify(as_request, as_identity, ll_len)
	if ll_rc = MI_E_BUFFER_TOO_SMALL then ll_len = ll_len + 1
loop while ll_rc = MI_E_BUFFER_TOO_SMALL
return ll_rc
end function

public function string of_last_error ();
long ll_len
string ls_msg
ll_len = 4096
ls_msg = Space(ll_len)
mi_last_error(ls_msg, ll_len)
return ls_msg
end function

on n_mi_sdk.create
call super::create
TriggerEvent( this, "constructor" )
end on

on n_mi_sdk.destroy
TriggerEvent( this, "destructor" )
call super::destroy
end on
