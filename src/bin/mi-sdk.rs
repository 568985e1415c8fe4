//! `mi-sdk`: the operators' command line, reading the same config and journal as the
//! HIS. `mi-sdk --help` lists the commands. Exit codes: 0 done, 1 the command failed
//! (message on stderr), 2 wrong usage.

use mi_sdk::journal::{Filter, Journal, RequestRow};
use mi_sdk::{Code, Config, Sdk};
use serde_json::{json, Value};
use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: mi-sdk [--config FILE] COMMAND
commands:
  status [--json]                 signed in? gateway? what is waiting, failing, uncertain
  requests [--state S] [--infno N] [--date YYYY-MM-DD] [--msgid M] [--limit N] [--json]
  show ID [--json]                one request with its attempts
  reverse ID                      send 2601 for an uncertain or succeeded settlement
  report [DATE] [--json]          a day's summary (default today): counts, failures, uncertain, settled amounts
  export --from DATE [--to DATE]  CSV of the requests created in that range, to stdout
  catalog INFNO --out DIR [--since VERSION] [--json]
                                  download a catalogue (1301-1319) as UTF-8 CSV with a header,
                                  every version after VERSION (default: the one DIR/INFNO.version
                                  records); resumable by version
  serve --watch DIR               the drop-box service: DIR/<name>.req.json in, <name>.res.json out
  sim [ARGS]                      run the platform simulator (mi-sim, installed beside mi-sdk)
  check [--sign-in]               config, journal, gateway reachable, clock against the gateway;
                                  with --sign-in also signs the operator in (9001)
The config is FILE, else $MI_SDK_CONFIG, else mi_sdk.json beside this program or in
the working folder.";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut config: Option<String> = None;
    if let Some(i) = args.iter().position(|a| a == "--config") {
        if i + 1 >= args.len() {
            return usage("--config needs a file");
        }
        config = Some(args.remove(i + 1));
        args.remove(i);
    }
    let json = take_flag(&mut args, "--json");
    let Some(cmd) = args.first().cloned() else { return usage("no command") };
    let rest = &args[1..];
    if cmd == "sim" {
        return sim(rest);
    }
    let exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_default();
    let cfg = match Config::load(config.as_deref(), &exe_dir) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let result = match cmd.as_str() {
        "status" => status(&cfg, json),
        "requests" => requests(&cfg, rest, json),
        "show" => show(&cfg, rest, json),
        "reverse" => reverse(cfg, rest),
        "serve" => serve(cfg, rest),
        "report" => report(&cfg, rest, json),
        "check" => check(cfg, rest),
        "export" => export(&cfg, rest),
        "catalog" => catalog(cfg, rest, json),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => return usage(&format!("unknown command {other}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Usage(m)) if m.starts_with("usage:") => usage(&m[6..]),
        Err(Usage(m)) => fail(&m),
    }
}

/// A failure, with whether it is a usage mistake ("usage:" prefix).
struct Usage(String);

impl From<mi_sdk::Error> for Usage {
    fn from(e: mi_sdk::Error) -> Usage {
        Usage(e.to_string())
    }
}

fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    let had = args.iter().any(|a| a == flag);
    args.retain(|a| a != flag);
    had
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("mi-sdk: {}\n{USAGE}", msg.trim());
    ExitCode::from(2)
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("mi-sdk: {msg}");
    ExitCode::from(1)
}

/// The journal, read as it is: an operator's command never creates one.
fn journal(cfg: &Config) -> Result<Journal, Usage> {
    let path = cfg.journal_path();
    if !path.is_file() {
        return Err(Usage(format!("no journal at {}: has the HIS run mi_init with this config?", path.display())));
    }
    Ok(Journal::open(&path, &cfg.journal.synchronous)?)
}

fn status(cfg: &Config, as_json: bool) -> Result<(), Usage> {
    let j = journal(cfg)?;
    let h = j.health()?;
    let (p50, p99) = j.recent_latency()?;
    let counts: serde_json::Map<String, Value> = mi_sdk::journal::state::ALL
        .iter()
        .map(|s| (s.to_string(), json!(0)))
        .chain(j.counts_by_state()?.into_iter().map(|(s, n)| (s, json!(n))))
        .collect();
    let date = mi_sdk::protocol::signin::today();
    let i = &cfg.institution;
    let signed_in = j.signin_get(&i.fixmedins_code, &i.opter, &date)?.is_some();
    let doc = json!({
        "version": mi_sdk::VERSION,
        "fixmedins_code": i.fixmedins_code,
        "gateway": {"url": mi_sdk::sdk::strip_userinfo(&cfg.gateway.url), "profile": cfg.gateway.profile},
        "journal": cfg.journal_path().display().to_string(),
        "journal_bytes": h.bytes,
        "counts": counts,
        "oldest_unfinished_at": h.oldest_unfinished,
        "oldest_unfinished_age_s": h.oldest_unfinished.as_deref().and_then(mi_sdk::sdk::age_seconds),
        "last_success_at": h.last_success_at,
        "last_error": h.last_error.as_ref().map(|(at, infno, msg)| json!({"at": at, "infno": infno, "message": msg})),
        "sign_in": {"opter": i.opter, "sign_date": date, "signed_in": signed_in},
        "latency_ms": {"p50": p50, "p99": p99},
    });
    if as_json {
        println!("{doc}");
        return Ok(());
    }
    let n = |s: &str| doc["counts"][s].as_i64().unwrap_or(0);
    println!("mi_sdk {}  institution {}", mi_sdk::VERSION, i.fixmedins_code);
    println!("gateway      {} ({})", doc["gateway"]["url"].as_str().unwrap_or(""), cfg.gateway.profile);
    println!("journal      {} ({} KiB)", doc["journal"].as_str().unwrap_or(""), h.bytes / 1024);
    println!(
        "sign-in      operator {} on {}: {}",
        i.opter,
        date,
        if signed_in { "signed in" } else { "not signed in" }
    );
    println!(
        "requests     {} succeeded, {} business errors, {} failed, {} reversed",
        n("succeeded"),
        n("business_error"),
        n("failed"),
        n("reversed")
    );
    println!("waiting      {} queued, {} sending, {} waiting to retry", n("queued"), n("sending"), n("retry_wait"));
    if let Some(at) = &h.oldest_unfinished {
        println!("oldest       unfinished since {at}");
    }
    println!("last success {}", h.last_success_at.as_deref().unwrap_or("never"));
    if let Some((at, infno, msg)) = &h.last_error {
        println!("last error   {at} {infno}: {msg}");
    }
    if let (Some(p50), Some(p99)) = (p50, p99) {
        println!("latency      p50 {p50} ms, p99 {p99} ms");
    }
    if n("uncertain") > 0 {
        println!(
            "ACTION       {} uncertain request(s): `mi-sdk requests --state uncertain`, then reverse or query",
            n("uncertain")
        );
    }
    Ok(())
}

fn opt(rest: &[String], name: &str) -> Result<Option<String>, Usage> {
    match rest.iter().position(|a| a == name) {
        Some(i) => rest.get(i + 1).cloned().map(Some).ok_or_else(|| Usage(format!("usage: {name} needs a value"))),
        None => Ok(None),
    }
}

fn row_json(r: &RequestRow) -> Value {
    json!({"request_id": r.id, "msgid": r.msgid, "infno": r.infno, "state": r.state, "priority": r.priority,
           "attempts": r.attempts, "mi_code": r.mi_code, "created_at": r.created_at, "updated_at": r.updated_at,
           "last_error": r.last_error, "reversal_of": r.reversal_of, "reversed_by": r.reversed_by})
}

fn requests(cfg: &Config, rest: &[String], as_json: bool) -> Result<(), Usage> {
    let limit = match opt(rest, "--limit")? {
        Some(l) => l.parse().map_err(|_| Usage("usage: --limit takes a number".into()))?,
        None => 50,
    };
    let state = opt(rest, "--state")?;
    if let Some(s) = &state {
        if !mi_sdk::journal::state::ALL.contains(&s.as_str()) {
            return Err(Usage(format!("usage: --state is one of {}", mi_sdk::journal::state::ALL.join(", "))));
        }
    }
    let f =
        Filter { state, infno: opt(rest, "--infno")?, date: opt(rest, "--date")?, msgid: opt(rest, "--msgid")?, limit };
    let rows = journal(cfg)?.find(&f)?;
    if as_json {
        println!("{}", Value::Array(rows.iter().map(row_json).collect()));
        return Ok(());
    }
    println!(
        "{:>8}  {:<5}  {:<14}  {:>3}  {:<23}  {:<30}  last error",
        "id", "infno", "state", "try", "created", "msgid"
    );
    for r in &rows {
        let err: String = r.last_error.as_deref().unwrap_or("").chars().take(60).collect();
        println!(
            "{:>8}  {:<5}  {:<14}  {:>3}  {:<23}  {:<30}  {err}",
            r.id, r.infno, r.state, r.attempts, r.created_at, r.msgid
        );
    }
    println!("{} request(s)", rows.len());
    Ok(())
}

fn id_arg(rest: &[String]) -> Result<i64, Usage> {
    rest.first().and_then(|a| a.parse().ok()).ok_or_else(|| Usage("usage: give a request id".into()))
}

fn show(cfg: &Config, rest: &[String], as_json: bool) -> Result<(), Usage> {
    let id = id_arg(rest)?;
    let j = journal(cfg)?;
    let r = j.request(id)?.ok_or_else(|| Usage(format!("no request {id}")))?;
    let attempts = j.attempts(id)?;
    if as_json {
        let mut doc = row_json(&r);
        doc["result"] = r.result.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null);
        doc["attempt_rows"] = attempts
            .iter()
            .map(|a| json!({"attempt_no": a.attempt_no, "msgid": a.msgid, "started_at": a.started_at, "outcome": a.outcome,
                            "http_status": a.http_status, "infcode": a.infcode, "err_msg": a.err_msg, "latency_ms": a.latency_ms}))
            .collect();
        println!("{doc}");
        return Ok(());
    }
    println!("request {}  {}  {}  priority {}", r.id, r.infno, r.state, r.priority);
    println!("msgid   {}", r.msgid);
    println!("created {}  updated {}", r.created_at, r.updated_at);
    if let Some(code) = r.mi_code {
        println!("code    {}", Code::from_i32(code).name());
    }
    if let Some(e) = &r.last_error {
        println!("error   {e}");
    }
    if let Some(o) = r.reversal_of {
        println!("reverses request {o}");
    }
    if let Some(b) = r.reversed_by {
        println!("reversed by request {b}");
    }
    for a in &attempts {
        println!(
            "  attempt {} {} {} {} http {} infcode {} {} ms {}",
            a.attempt_no,
            a.started_at,
            a.msgid,
            a.outcome,
            a.http_status.map_or("-".into(), |s| s.to_string()),
            a.infcode.map_or("-".into(), |s| s.to_string()),
            a.latency_ms.map_or("-".into(), |s| s.to_string()),
            a.err_msg
        );
    }
    Ok(())
}

fn reverse(cfg: Config, rest: &[String]) -> Result<(), Usage> {
    let id = id_arg(rest)?;
    journal(&cfg)?;
    let sdk = Sdk::start(cfg)?;
    let r = sdk.reverse(id);
    sdk.shutdown(std::time::Duration::from_secs(10));
    let out = r?;
    println!("{}", out.output);
    if out.code == Code::Ok {
        println!("request {id} reversed by request {}", out.request_id);
        Ok(())
    } else {
        Err(Usage(format!("the reversal ended with {}", out.code.name())))
    }
}

fn serve(cfg: Config, rest: &[String]) -> Result<(), Usage> {
    let dir = opt(rest, "--watch")?.ok_or_else(|| Usage("usage: serve needs --watch DIR".into()))?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, std::sync::atomic::Ordering::Release))
        .map_err(|e| Usage(format!("cannot watch for Ctrl-C / SIGTERM: {e}")))?;
    let sdk = Sdk::start(cfg)?;
    eprintln!("mi-sdk: watching {dir} (Ctrl-C to stop)");
    let r = mi_sdk::dropbox::run(&sdk, Path::new(&dir), &stop);
    sdk.shutdown(std::time::Duration::from_secs(10));
    r?;
    eprintln!("mi-sdk: stopped");
    Ok(())
}

fn date_arg(d: &str) -> Result<String, Usage> {
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .map(|_| d.to_string())
        .map_err(|_| Usage(format!("usage: {d} is not a date (YYYY-MM-DD)")))
}

fn report(cfg: &Config, rest: &[String], as_json: bool) -> Result<(), Usage> {
    let day = match rest.first() {
        Some(d) => date_arg(d)?,
        None => mi_sdk::protocol::signin::today(),
    };
    let rows = journal(cfg)?.between(&day, &day)?;
    let mut by: std::collections::BTreeMap<(String, String), i64> = Default::default();
    let mut failures = Vec::new();
    let mut uncertain = Vec::new();
    let mut settled = [0f64; 4];
    let mut settlements = 0;
    for r in &rows {
        *by.entry((r.infno.clone(), r.state.clone())).or_default() += 1;
        match r.state.as_str() {
            "failed" | "business_error" => {
                failures.push(json!({"request_id": r.id, "infno": r.infno, "msgid": r.msgid, "err_msg": r.last_error}))
            }
            "uncertain" => {
                uncertain.push(json!({"request_id": r.id, "infno": r.infno, "msgid": r.msgid, "since": r.updated_at}))
            }
            _ => {}
        }
        if r.state == "succeeded" && (r.infno == "2207" || r.infno == "2304") {
            if let Some(s) = r.result.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok()) {
                let si = &s["output"]["setlinfo"];
                for (i, k) in ["medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay"].iter().enumerate() {
                    settled[i] += si[k].as_f64().or_else(|| si[k].as_str().and_then(|v| v.parse().ok())).unwrap_or(0.0);
                }
                settlements += 1;
            }
        }
    }
    let round = |v: f64| (v * 100.0).round() / 100.0;
    let doc = json!({
        "date": day,
        "requests": rows.len(),
        "by_transaction": by.iter().map(|((i, s), n)| json!({"infno": i, "state": s, "count": n})).collect::<Vec<_>>(),
        "failures": failures,
        "uncertain": uncertain,
        "settled": {"count": settlements, "medfee_sumamt": round(settled[0]), "fund_pay_sumamt": round(settled[1]),
                    "acct_pay": round(settled[2]), "psn_cash_pay": round(settled[3])},
    });
    if as_json {
        println!("{doc}");
        return Ok(());
    }
    println!("report for {day}: {} requests", rows.len());
    for ((infno, state), n) in &by {
        println!("  {infno:<5} {state:<14} {n:>6}");
    }
    println!(
        "settled: {settlements} settlements, total {:.2}, fund {:.2}, account {:.2}, cash {:.2}",
        settled[0], settled[1], settled[2], settled[3]
    );
    if !failures.is_empty() {
        println!("failures:");
        for f in &failures {
            println!(
                "  {} {} {}",
                f["request_id"],
                f["infno"].as_str().unwrap_or(""),
                f["err_msg"].as_str().unwrap_or("")
            );
        }
    }
    if !uncertain.is_empty() {
        println!("ACTION: {} uncertain request(s) to reverse or query:", uncertain.len());
        for u in &uncertain {
            println!(
                "  {} {} msgid {}",
                u["request_id"],
                u["infno"].as_str().unwrap_or(""),
                u["msgid"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

fn catalog(cfg: Config, rest: &[String], as_json: bool) -> Result<(), Usage> {
    let infno = rest
        .first()
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .ok_or_else(|| Usage("usage: catalog needs a transaction code, e.g. catalog 1301 --out DIR".into()))?;
    let out = opt(rest, "--out")?.ok_or_else(|| Usage("usage: catalog needs --out DIR".into()))?;
    let since = opt(rest, "--since")?;
    let sdk = Sdk::start(cfg)?;
    let r = mi_sdk::catalog::fetch(&sdk, &infno, since.as_deref(), Path::new(&out));
    sdk.shutdown(std::time::Duration::from_secs(10));
    let fetched = r?;
    if as_json {
        let list: Vec<Value> = fetched
            .iter()
            .map(|f| json!({"version": f.version, "csv": f.csv.to_string_lossy(), "rows": f.rows}))
            .collect();
        println!("{}", Value::Array(list));
    } else if fetched.is_empty() {
        let at = std::fs::read_to_string(mi_sdk::catalog::version_file(Path::new(&out), &infno)).unwrap_or_default();
        println!("{infno}: up to date (version {})", since.unwrap_or_else(|| at.trim().to_string()));
    } else {
        for f in &fetched {
            println!("{infno} version {}: {} rows -> {}", f.version, f.rows, f.csv.display());
        }
    }
    Ok(())
}

fn export(cfg: &Config, rest: &[String]) -> Result<(), Usage> {
    let from = date_arg(&opt(rest, "--from")?.ok_or_else(|| Usage("usage: export needs --from DATE".into()))?)?;
    let to = match opt(rest, "--to")? {
        Some(t) => date_arg(&t)?,
        None => from.clone(),
    };
    let rows = journal(cfg)?.between(&from, &to)?;
    println!("request_id,msgid,infno,state,mi_code,attempts,created_at,updated_at,infcode,err_msg");
    for r in &rows {
        let result: Value = r.result.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null);
        let infcode = match &result["infcode"] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let err = r.last_error.clone().unwrap_or_default();
        println!(
            "{},{},{},{},{},{},{},{},{},{}",
            r.id,
            r.msgid,
            r.infno,
            r.state,
            r.mi_code.map(|c| c.to_string()).unwrap_or_default(),
            r.attempts,
            r.created_at,
            r.updated_at,
            mi_sdk::catalog::csv_field(&infcode),
            mi_sdk::catalog::csv_field(&err)
        );
    }
    Ok(())
}

/// Checks what an installation needs, one line each; fails if any check fails.
fn check(cfg: Config, rest: &[String]) -> Result<(), Usage> {
    let mut failed = 0;
    let mut line = |ok: bool, what: &str, detail: String| {
        println!("{} {what:<8} {detail}", if ok { "OK  " } else { "FAIL" });
        failed += usize::from(!ok);
    };
    line(
        true,
        "config",
        format!("institution {}, gateway profile {}", cfg.institution.fixmedins_code, cfg.gateway.profile),
    );
    let jp = cfg.journal_path();
    if jp.is_file() {
        match Journal::open(&jp, &cfg.journal.synchronous).and_then(|j| j.check_writable()) {
            Ok(()) => line(true, "journal", format!("{} is writable", jp.display())),
            Err(e) => line(false, "journal", format!("{}: {}", jp.display(), e.message)),
        }
    } else {
        // Not there yet: mi_init will create it; prove the folder takes a file.
        let dir = jp.parent().map(Path::to_path_buf).unwrap_or_default();
        let probe = dir.join(".mi_sdk_check");
        let ok = std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(&probe, b""))
            .and_then(|_| std::fs::remove_file(&probe));
        match ok {
            Ok(()) => line(true, "journal", format!("{} will be created by mi_init", jp.display())),
            Err(e) => line(false, "journal", format!("{} cannot be created: {e}", dir.display())),
        }
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(std::time::Duration::from_millis(cfg.gateway.connect_timeout_ms)))
        .timeout_global(Some(std::time::Duration::from_secs(15)))
        .build()
        .into();
    let t0 = std::time::Instant::now();
    match agent.get(&cfg.gateway.url).call() {
        Ok(resp) => {
            line(
                true,
                "gateway",
                format!("answered HTTP {} in {} ms", resp.status().as_u16(), t0.elapsed().as_millis()),
            );
            let date = resp.headers().get("date").and_then(|d| d.to_str().ok()).map(str::to_owned);
            match date.as_deref().and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok()) {
                Some(theirs) => {
                    let skew = (chrono::Utc::now() - theirs.with_timezone(&chrono::Utc)).num_seconds();
                    // Gateways refuse signatures whose timestamp is minutes off.
                    line(skew.abs() <= 60, "clock", format!("{skew:+} s against the gateway's Date header"));
                }
                None => line(true, "clock", "the gateway sends no Date header; not compared".into()),
            }
        }
        Err(e) => line(false, "gateway", format!("{}: {e}", mi_sdk::sdk::strip_userinfo(&cfg.gateway.url))),
    }
    if rest.iter().any(|a| a == "--sign-in") {
        let sdk = Sdk::start(cfg.clone())?;
        let i = &cfg.institution;
        let input = json!({"signIn": {"opter_no": i.opter, "mac": i.mac, "ip": i.ip}}).to_string();
        match sdk.call_sync("9001", &input) {
            Ok(o) if o.code == Code::Ok => line(true, "sign-in", format!("operator {} signed in", i.opter)),
            Ok(o) => line(false, "sign-in", format!("{}: {}", o.code.name(), o.output)),
            Err(e) => line(false, "sign-in", e.to_string()),
        }
        sdk.shutdown(std::time::Duration::from_secs(5));
    }
    if failed > 0 {
        return Err(Usage(format!("{failed} check(s) failed")));
    }
    Ok(())
}

/// Runs the simulator binary that ships beside this one, with the given arguments.
fn sim(rest: &[String]) -> ExitCode {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(format!("mi-sim{}", std::env::consts::EXE_SUFFIX))));
    let Some(exe) = exe.filter(|e| e.is_file()) else { return fail("mi-sim is not installed beside mi-sdk") };
    match std::process::Command::new(&exe).args(rest).status() {
        Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(0, 255) as u8),
        Err(e) => fail(&format!("{}: {e}", exe.display())),
    }
}
