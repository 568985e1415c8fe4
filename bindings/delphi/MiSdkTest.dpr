{ The Delphi binding's test, compiled by fpc -Mdelphi and run by tests/bindings.rs:
  MiSdkTest <gateway-url> <work-dir>. Prints "N passed, M failed". }
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

var
  Config, Output, Rec: AnsiString;
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
    '"journal":{"path":"' + AnsiString(ParamStr(2)) + '/pas_journal.db"},"log":{"dir":"' + AnsiString(ParamStr(2)) + '/pas_logs"}}';
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
