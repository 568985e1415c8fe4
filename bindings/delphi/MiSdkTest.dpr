{ The Delphi binding's test, compiled by fpc -Mdelphi and run by tests/bindings.rs:
  MiSdkTest <gateway-url> <work-dir> [<stand-in e-voucher reader library>].
  Prints "N passed, M failed". }
program MiSdkTest;

{$IFDEF FPC}{$MODE DELPHI}{$ENDIF}

uses SysUtils, MiSdk, MiSdkHelper;

var
  Passed, Failed: Integer;

procedure Check(Ok: Boolean; const What: string);
begin
  if Ok then Inc(Passed) else begin Inc(Failed); WriteLn(StdErr, 'FAIL: ', What); end;
end;

const
  { 张三 and 未查询到 in GBK, spelled as bytes so the source file's encoding does not matter. }
  GbkZhangSan: AnsiString = #$D5#$C5#$C8#$FD;
  GbkNotFound: AnsiString = #$CE#$B4#$B2#$E9#$D1#$AF#$B5#$BD;
  Q1101 = '{"data":{"mdtrt_cert_type":"02","mdtrt_cert_no":"440301199001011234"}}';
  Psn = '44030000000000100001';
  OursKey = '"ours":{';

{ A transaction's input as the platform takes it: the input and the insured's area. }
function PerCall(const Input: AnsiString): AnsiString;
begin
  Result := '{"input":' + Input + ',"insuplc_admdvs":"440300"}';
end;

{ The first value of Name in a JSON text: a string's contents, or a number's or literal's text. }
function Field(const Json, Name: AnsiString): AnsiString;
var
  Rest: AnsiString;
  P, E: Integer;
begin
  Result := '';
  P := Pos('"' + Name + '":', Json);
  if P = 0 then Exit;
  Rest := Copy(Json, P + Length(Name) + 3, MaxInt);
  if Copy(Rest, 1, 1) = '"' then
  begin
    Rest := Copy(Rest, 2, MaxInt);
    E := Pos('"', Rest);
  end
  else
  begin
    E := 1;
    while (E <= Length(Rest)) and not (Rest[E] in [',', '}', ']']) do Inc(E);
  end;
  Result := Copy(Rest, 1, E - 1);
end;

{ The largest ours.fixmedins_setl_cnt of a reconciliation report's groups; -1 with no group. }
function MostSettled(const Report: AnsiString): Integer;
var
  Rest: AnsiString;
  P, N: Integer;
begin
  Result := -1;
  Rest := Report;
  P := Pos(OursKey, Rest);
  while P > 0 do
  begin
    Rest := Copy(Rest, P + Length(OursKey), MaxInt);
    N := StrToIntDef(string(Field(Copy(Rest, 1, Pos('}', Rest)), 'fixmedins_setl_cnt')), -1);
    if N > Result then Result := N;
    P := Pos(OursKey, Rest);
  end;
end;

var
  Config, Output, Rec, Mdtrt: AnsiString;
  Rc, I: Integer;
  Id, AsyncId: Int64;
begin
  Passed := 0;
  Failed := 0;
  Check(mi_abi_version = 1, 'abi version');
  Check(StrComp(mi_code_name(MI_E_UNCERTAIN), 'MI_E_UNCERTAIN') = 0, 'code name');
  Check(StrLen(mi_version) >= 5, 'version');
  Rc := MiCallSync('1101', Q1101, Output, Id);
  Check(Rc = MI_E_NOT_INITIALIZED, 'call before init');
  Config := '{"institution":{"fixmedins_code":"H44030000001","fixmedins_name":"Delphi","mdtrtarea_admvs":"440300",' +
    '"opter":"0001","opter_name":"cashier"},"gateway":{"url":"' + AnsiString(ParamStr(1)) + '","timeout_ms":5000},' +
    '"journal":{"path":"' + AnsiString(ParamStr(2)) + '/pas_journal.db"},"log":{"dir":"' + AnsiString(ParamStr(2)) + '/pas_logs"}';
  if ParamCount >= 3 then
    Config := Config + ',"readers":{"ecard":{"library":"' + AnsiString(ParamStr(3)) +
      '","url":"http://127.0.0.1:9/localcfc/api/hsecfc/localQrCodeQuery"}}';
  Config := Config + '}';
  Rc := MiInit(Config);
  Check(Rc = MI_OK, 'init: ' + string(MiLastError));
  Rc := MiCallSync('1101', Q1101, Output, Id);
  Check(Rc = MI_OK, '1101: ' + string(Output));
  Check(Pos('"psn_no":"44030000000000100001"', string(Output)) > 0, '1101 output has the person');
  Check(Id > 0, 'request id');
  Rc := MiCallSync('1101', '{"data":{"mdtrt_cert_type":"02","mdtrt_cert_no":"0"}}', Output, Id);
  Check(Rc = MI_E_BUSINESS, 'business error');
  Check(Pos('"infcode"', string(Output)) > 0, 'business error output');
  Rc := MiCallSync('11a1', Q1101, Output, Id);
  Check(Rc = MI_E_INVALID_ARGUMENT, 'bad infno');
  Check(Pos('transaction code', string(MiLastError)) > 0, 'last error says why');
  Rc := MiCallAsync('1101', Q1101, 3, AsyncId);
  Check((Rc = MI_OK) and (AsyncId > 0), 'async submit');
  I := 0;
  repeat
    Rc := MiGetResult(AsyncId, Output);
    if Rc = MI_PENDING then Sleep(10);
    Inc(I);
  until (Rc <> MI_PENDING) or (I > 500);
  Check(Rc = MI_OK, 'async result');
  Check((MiGetRequest(AsyncId, Rec) = MI_OK) and (Pos('"state":"succeeded"', string(Rec)) > 0), 'request record');
  Check(MiGetRequest(987654321, Rec) = MI_E_NOT_FOUND, 'unknown id');
  Check((MiStatus(Rec) = MI_OK) and (Pos('"queue_depth"', string(Rec)) > 0), 'status');
  Rc := MiIdentify('{"way":"ecard"}', Rec);
  if ParamCount >= 3 then
  begin
    Check(Rc = MI_OK, 'identify: ' + string(MiLastError));
    Check((Field(Rec, 'mdtrt_cert_type') = '01') and (Field(Rec, 'certno') = '440301199001011234'),
      'identified by the e-voucher: ' + string(Rec));
  end
  else
    Check((Rc = MI_E_CONFIG) and (Pos('readers.ecard.library', string(MiLastError)) > 0), 'no reader configured');
  Check(MiIdentify('{"way":"face"}', Rec) = MI_E_INVALID_ARGUMENT, 'an unknown way is refused');

  { Settle a visit (fees, then 2207) so that today's books hold a settlement. }
  Rc := MiCallSync('2201', PerCall('{"data":{"psn_no":"' + Psn + '","insutype":"310","ipt_otp_no":"PAS-1"}}'), Output, Id);
  Mdtrt := Field(Output, 'mdtrt_id');
  Check((Rc = MI_OK) and (Mdtrt <> ''), '2201: ' + string(Output));
  Rc := MiCallSync('2204', PerCall('{"feedetail":[{"feedetl_sn":"1","mdtrt_id":"' + Mdtrt + '","psn_no":"' + Psn +
    '","chrg_bchno":"B","med_list_codg":"X1","det_item_fee_sumamt":12.5,"cnt":1,"pric":12.5}]}'), Output, Id);
  Check(Rc = MI_OK, '2204: ' + string(Output));
  Rc := MiCallSync('2207', PerCall('{"data":{"psn_no":"' + Psn + '","mdtrt_id":"' + Mdtrt +
    '","medfee_sumamt":12.5,"acct_used_flag":"1","med_type":"11"}}'), Output, Id);
  Check((Rc = MI_OK) and (Field(Output, 'setl_id') <> ''), '2207: ' + string(Output));
  Rc := MiReconcile('{"from":"' + AnsiString(FormatDateTime('yyyy-mm-dd', Date)) + '"}', Rec);
  Check(Rc = MI_OK, 'reconcile: ' + string(MiLastError));
  Check(Field(Rec, 'balanced') = 'true', 'today''s books balance: ' + string(Rec));
  Check(Pos('"groups":[', string(Rec)) > 0, 'the report has groups');
  Check(MostSettled(Rec) >= 1, 'today''s settlement is in our books: ' + string(Rec));
  Rc := MiReconcile('{"from":"2026-13-01"}', Rec);
  Check((Rc = MI_E_INVALID_ARGUMENT) and (Pos('2026-13-01', string(MiLastError)) > 0), 'a bad date is refused');
  Check(mi_shutdown(2000) = MI_OK, 'shutdown');

  { GBK end to end: a PAnsiChar holding GBK, as Delphi 7 on Chinese Windows has it. }
  Rc := MiInit(Copy(Config, 1, Length(Config) - 1) + ',"charset":"gbk"}');
  Check(Rc = MI_OK, 'init gbk: ' + string(MiLastError));
  Rc := MiCallSync('1101', '{"data":{"mdtrt_cert_type":"02","mdtrt_cert_no":"440301199001011234","psn_name":"' +
    GbkZhangSan + '"}}', Output, Id);
  Check(Rc = MI_OK, 'gbk 1101: ' + string(MiLastError));
  Check(Pos(GbkZhangSan, Output) > 0, 'the name comes back in GBK');
  Rc := MiCallSync('1101', '{"data":{"mdtrt_cert_type":"02","mdtrt_cert_no":"0"}}', Output, Id);
  Check((Rc = MI_E_BUSINESS) and (Pos(GbkNotFound, MiLastError) > 0), 'the Chinese err_msg comes back in GBK');
  Rc := MiCallSync('1101', '{"data":{"psn_name":"' + #$81 + '"}}', Output, Id);
  Check(Rc = MI_E_INVALID_ARGUMENT, 'invalid GBK is refused');
  Check(mi_shutdown(2000) = MI_OK, 'shutdown gbk');
  WriteLn(Passed, ' passed, ', Failed, ' failed');
  if Failed > 0 then Halt(1);
end.
