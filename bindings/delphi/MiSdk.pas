{ mi_sdk for Delphi (7 through 12) and Free Pascal: the C ABI's declarations.
  stdcall on Windows (what the 32- and 64-bit DLLs export), cdecl elsewhere.
  Strings are PAnsiChar in the config's charset: with Delphi 7 (AnsiString is the
  system code page, GBK on Chinese Windows) configure "charset": "gbk"; with Delphi
  2009+ either keep AnsiString and "gbk", or use UTF8String and "utf-8".
  MiSdkHelper wraps buffers and codes. }
unit MiSdk;

{$IFDEF FPC}{$MODE DELPHI}{$ENDIF}

interface

const
{$IFDEF MSWINDOWS}
  MiSdkLib = 'mi_sdk.dll';
{$ELSE}
  MiSdkLib = 'mi_sdk';
{$ENDIF}

  MI_OK = 0;
  MI_PENDING = 1;
  MI_E_INVALID_ARGUMENT = -1;
  MI_E_NOT_INITIALIZED = -2;
  MI_E_BUFFER_TOO_SMALL = -3;
  MI_E_CONFIG = -4;
  MI_E_NETWORK = -5;
  MI_E_TIMEOUT = -6;
  MI_E_PROTOCOL = -7;
  MI_E_BUSINESS = -8;
  MI_E_UNCERTAIN = -9;
  MI_E_JOURNAL = -10;
  MI_E_NOT_FOUND = -11;
  MI_E_BUSY = -12;
  MI_E_SHUTDOWN = -13;
  MI_E_INTERNAL = -99;

function mi_init(config: PAnsiChar): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_call_sync(infno, input: PAnsiChar; output: PAnsiChar; var outputLen: Integer): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_call_async(infno, input: PAnsiChar; priority: Integer; var requestId: Int64): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_get_result(requestId: Int64; output: PAnsiChar; var outputLen: Integer): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_get_request(requestId: Int64; output: PAnsiChar; var outputLen: Integer): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_reverse(requestId: Int64; output: PAnsiChar; var outputLen: Integer): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_reconcile(request: PAnsiChar; output: PAnsiChar; var outputLen: Integer): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_identify(request: PAnsiChar; output: PAnsiChar; var outputLen: Integer): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_upload_file(path: PAnsiChar; output: PAnsiChar; var outputLen: Integer): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_download_file(fileQuryNo, filename, destDir: PAnsiChar; output: PAnsiChar; var outputLen: Integer): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_get_status(output: PAnsiChar; var outputLen: Integer): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_last_error(output: PAnsiChar; var outputLen: Integer): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_last_request_id: Int64; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_shutdown(waitMs: Integer): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_version: PAnsiChar; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_abi_version: Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_code_name(code: Integer): PAnsiChar; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_sm3_hex(data: PAnsiChar; output: PAnsiChar; var outputLen: Integer): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_sm4_encrypt_hex(mode, keyHex, ivHex, plaintext: PAnsiChar; output: PAnsiChar; var outputLen: Integer): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;
function mi_sm4_decrypt_hex(mode, keyHex, ivHex, ciphertextHex: PAnsiChar; output: PAnsiChar; var outputLen: Integer): Integer; {$IFDEF MSWINDOWS}stdcall{$ELSE}cdecl{$ENDIF}; external MiSdkLib;

implementation

end.
