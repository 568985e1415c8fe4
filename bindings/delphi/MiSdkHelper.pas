{ Buffers and codes for mi_sdk in Delphi: AnsiString in, AnsiString out (bytes in the
  config's charset). A call whose output did not fit is never repeated: its kept
  result is fetched with mi_get_result. }
unit MiSdkHelper;

{$IFDEF FPC}{$MODE DELPHI}{$ENDIF}

interface

uses MiSdk;

function MiInit(const Config: AnsiString): Integer;
function MiCallSync(const Infno, Input: AnsiString; out Output: AnsiString; out RequestId: Int64): Integer;
function MiCallAsync(const Infno, Input: AnsiString; Priority: Integer; out RequestId: Int64): Integer;
function MiGetResult(RequestId: Int64; out Output: AnsiString): Integer;
function MiGetRequest(RequestId: Int64; out Output: AnsiString): Integer;
function MiStatus(out Output: AnsiString): Integer;
function MiReconcile(const Request: AnsiString; out Report: AnsiString): Integer;
(* Who the patient is, through the configured card and e-voucher readers: Request like
  '{"way":"auto"}'; Identity the answer, its "data" ready to be 1101's data. *)
function MiIdentify(const Request: AnsiString; out Identity: AnsiString): Integer;
function MiLastError: AnsiString;

implementation

const
  FirstSize = 65536;

function MiInit(const Config: AnsiString): Integer;
begin
  if Config = '' then Result := mi_init(nil) else Result := mi_init(PAnsiChar(Config));
end;

type
  TTextKind = (tkResult, tkRequest, tkStatus, tkReconcile, tkIdentify);

{ Asks for a text with a larger buffer while it does not fit (the ABI's buffer protocol).
  Request is the text tkReconcile and tkIdentify send. }
function ReadText(Kind: TTextKind; RequestId: Int64; const Request: AnsiString; out Output: AnsiString): Integer;
var
  Buf: AnsiString;
  Len: Integer;
begin
  Len := FirstSize;
  repeat
    SetLength(Buf, Len);
    case Kind of
      tkResult: Result := mi_get_result(RequestId, PAnsiChar(Buf), Len);
      tkRequest: Result := mi_get_request(RequestId, PAnsiChar(Buf), Len);
      tkReconcile: Result := mi_reconcile(PAnsiChar(Request), PAnsiChar(Buf), Len);
      tkIdentify: Result := mi_identify(PAnsiChar(Request), PAnsiChar(Buf), Len);
    else
      Result := mi_get_status(PAnsiChar(Buf), Len);
    end;
    if Result = MI_E_BUFFER_TOO_SMALL then Inc(Len);
  until Result <> MI_E_BUFFER_TOO_SMALL;
  if (Len >= 0) and (Len < Length(Buf)) then Output := Copy(Buf, 1, Len) else Output := '';
end;

function MiGetResult(RequestId: Int64; out Output: AnsiString): Integer;
begin
  Result := ReadText(tkResult, RequestId, '', Output);
end;

function MiGetRequest(RequestId: Int64; out Output: AnsiString): Integer;
begin
  Result := ReadText(tkRequest, RequestId, '', Output);
end;

function MiStatus(out Output: AnsiString): Integer;
begin
  Result := ReadText(tkStatus, 0, '', Output);
end;

{ Request: JSON with "from" (yyyy-MM-dd) and optionally "to" and "journals". MI_OK with
  the report JSON whether or not the books balance. A report too big for
  the buffer is kept by the library and handed over when the same request is asked
  again on the same thread, which ReadText does. }
function MiReconcile(const Request: AnsiString; out Report: AnsiString): Integer;
begin
  Result := ReadText(tkReconcile, 0, Request, Report);
end;

function MiIdentify(const Request: AnsiString; out Identity: AnsiString): Integer;
begin
  Result := ReadText(tkIdentify, 0, Request, Identity);
end;

function MiCallSync(const Infno, Input: AnsiString; out Output: AnsiString; out RequestId: Int64): Integer;
var
  Buf: AnsiString;
  Len: Integer;
begin
  SetLength(Buf, FirstSize);
  Len := FirstSize;
  Result := mi_call_sync(PAnsiChar(Infno), PAnsiChar(Input), PAnsiChar(Buf), Len);
  RequestId := mi_last_request_id;
  if (Result = MI_E_BUFFER_TOO_SMALL) and (RequestId > 0) then
    Result := MiGetResult(RequestId, Output)
  else if (Len >= 0) and (Len < FirstSize) then
    Output := Copy(Buf, 1, Len)
  else
    Output := '';
end;

function MiCallAsync(const Infno, Input: AnsiString; Priority: Integer; out RequestId: Int64): Integer;
begin
  RequestId := 0;
  Result := mi_call_async(PAnsiChar(Infno), PAnsiChar(Input), Priority, RequestId);
end;

function MiLastError: AnsiString;
var
  Buf: AnsiString;
  Len: Integer;
begin
  SetLength(Buf, 4096);
  Len := 4096;
  if mi_last_error(PAnsiChar(Buf), Len) = MI_OK then Result := Copy(Buf, 1, Len) else Result := '';
end;

end.
