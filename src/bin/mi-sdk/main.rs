//! `mi-sdk`: the operators' command line, reading the same config and journal as the
//! HIS. It parses its arguments and calls `mi_sdk::ops`; `mi-sdk --help` lists the
//! commands. Exit codes: 0 done, 1 the command failed (message on stderr), 2 wrong
//! usage.

mod bridge;
mod odbc;

use mi_sdk::ops::{self, Printed};
use mi_sdk::{Config, Error, Filter};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: mi-sdk [--config FILE] COMMAND
commands:
  status [--json]                 signed in? gateway? what is waiting, failing, uncertain
  requests [--state S] [--infno N] [--date YYYY-MM-DD] [--msgid M] [--limit N] [--json]
  show ID [--json]                one request with its attempts (--json: with its envelope and
                                  result, which the journal keeps sealed)
  reverse ID                      send 2601 for an uncertain or succeeded settlement
  report [DATE] [--json]          a day's summary (default today): counts, failures, uncertain, settled amounts
  reconcile --date DATE [--to DATE] [--journal FILE|DIR]... [--json]
                                  the day's books with the platform: 3201 per group, the 3202
                                  detail where they differ, uncertain settlements resolved by
                                  the platform's books; other workstations' journals (or a folder
                                  of copies) are read only; exits 3 when the books differ
  export --from DATE [--to DATE] [--encoding utf8-bom|utf8|gbk]
                                  CSV of the requests created in that range, to stdout; UTF-8
                                  with a BOM by default, so a Chinese Excel opens it right
  catalog INFNO --out DIR [--since VERSION] [--json]
                                  download a catalogue (1301-1319) as UTF-8 CSV with a header,
                                  every version after VERSION (default: the one DIR/INFNO.version
                                  records); resumable by version
  serve --watch DIR               the drop-box service: DIR/<name>.req.json in, <name>.res.json out
  serve --http ADDR               the local HTTP API (e.g. 127.0.0.1:8765; token: http.token;
                                  docs/http.md)
  service install|start|stop|uninstall [--name N] [--watch DIR | --bridge | --http ADDR]
                                  the drop-box service (--watch DIR), a database bridge node on
                                  the config's bridge section (--bridge), or the local HTTP API
                                  (--http ADDR), as a Windows service that
                                  starts with Windows (default name mi-sdk); install takes the
                                  config as every command does; run as administrator
  bridge script|install|uninstall|run [--dsn ODBC] [--dialect D] [--prefix P]
                                  the HIS database as the front door: a request table,
                                  sp_<P>_call, sp_<P>_call_wait and v_<P>_result (docs/bridge.md);
                                  script prints the SQL for a DBA (--dialect postgres|mysql|
                                  sqlserver|oracle, --uninstall); install / uninstall run it over
                                  ODBC (--force drops unfinished requests); run is a bridge node
                                  (--workers N, --node NAME, --lease S, --poll-ms MS); the
                                  connection string may come from MI_BRIDGE_DSN instead
  sim [ARGS]                      run the platform simulator (mi-sim, installed beside mi-sdk)
  journal rekey                   rotate the journal's sealing key: a new key file, every sealed
                                  value sealed again with it; with every program using the
                                  journal stopped
  check [--sign-in]               config, journal, gateway reachable, clock against the gateway;
                                  with --sign-in also signs the operator in (9001)
  help [COMMAND]                  this text, or one command's (also COMMAND --help); needs no config
The config is FILE, else $MI_SDK_CONFIG, else mi_sdk.json beside this program or in
the working folder.";

/// Why a command did not run: a mistake in its arguments (exit 2), or a failure (1).
enum Stop {
    Usage(String),
    Failed(String),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Failed(e.to_string())
    }
}

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
    // Help needs no config: it is what a newcomer types first.
    let asks_help = |a: &String| a == "-h" || a == "--help";
    if asks_help(&cmd) || cmd == "help" {
        return help(rest.first().map(String::as_str));
    }
    if rest.iter().any(asks_help) {
        return help(Some(&cmd));
    }
    mi_sdk::charset::set_ansi_code_page(mi_sdk::ffi::system_ansi_code_page());
    let exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_default();
    if cmd == "bridge" {
        // script, install and uninstall need no config; run reads it as serve does.
        return finish(bridge::command(config.as_deref(), &exe_dir, rest));
    }
    if cmd == "service" {
        // start, stop and uninstall need no config; install and run name its file.
        return finish(service(config.as_deref(), &exe_dir, rest));
    }
    let cfg = match Config::load(config.as_deref(), &exe_dir) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    if cmd == "export" {
        return export(&cfg, rest).map_or_else(stopped, |csv| write_out(&csv));
    }
    let result = match cmd.as_str() {
        "status" => ops::status(&cfg, json).map(printed).map_err(Stop::from),
        "requests" => {
            filter(rest).and_then(|f| Ok(printed(ops::requests::list(&cfg, &ops::journal(&cfg)?, &f, json)?)))
        }
        "show" => id_arg(rest).and_then(|id| Ok(printed(ops::requests::show(&cfg, id, json)?))),
        "reverse" => id_arg(rest).and_then(|id| Ok(ops::reverse(cfg, id)?)),
        "report" => report(&cfg, rest, json),
        // Books that differ are not a failed command: exit 3, so that a scheduled
        // task tells "look at the books" from "the run failed" (1).
        "reconcile" => {
            return match reconcile(cfg, rest, json) {
                Ok(Printed { text, failure: Some(why) }) => {
                    let _ = write_out(format!("{text}\n").as_bytes());
                    eprintln!("mi-sdk: {why}");
                    ExitCode::from(3)
                }
                other => finish(other),
            }
        }
        "catalog" => catalog(cfg, rest, json),
        "journal" => match rest {
            [action] if action == "rekey" => ops::rekey(&cfg).map(printed).map_err(Stop::from),
            _ => Err(Stop::Usage("journal takes one action: rekey".into())),
        },
        "serve" => serve(cfg, rest),
        "check" => Ok(ops::check::run(cfg, rest.iter().any(|a| a == "--sign-in"), &mut |l| {
            let _ = writeln!(std::io::stdout(), "{l}");
        })),
        other => return usage(&format!("unknown command {other}")),
    };
    finish(result)
}

/// Prints what a command printed, and exits as it ended.
fn finish(result: Result<Printed, Stop>) -> ExitCode {
    match result {
        Ok(Printed { text, failure }) => {
            if !text.is_empty() {
                let code = write_out(format!("{text}\n").as_bytes());
                if code != ExitCode::SUCCESS {
                    return code;
                }
            }
            match failure {
                None => ExitCode::SUCCESS,
                Some(why) => fail(&why),
            }
        }
        Err(stop) => stopped(stop),
    }
}

fn stopped(stop: Stop) -> ExitCode {
    match stop {
        Stop::Usage(m) => usage(&m),
        Stop::Failed(m) => fail(&m),
    }
}

/// Writes the output to stdout. A reader that stopped early (`mi-sdk export | head`)
/// is not an error: the command ends quietly, as Unix tools do.
fn write_out(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(&format!("cannot write the output: {e}")),
    }
}

/// The whole usage, or one command's lines of it.
fn help(command: Option<&str>) -> ExitCode {
    let Some(command) = command else { return write_out(format!("{USAGE}\n").as_bytes()) };
    // A command's line, and the lines indented under it.
    let mut lines: Vec<&str> = Vec::new();
    for line in USAGE.lines() {
        if lines.is_empty() {
            if line.strip_prefix("  ").and_then(|l| l.split_whitespace().next()) == Some(command) {
                lines.push(line);
            }
        } else if line.starts_with(&" ".repeat(34)) {
            lines.push(line);
        } else {
            break;
        }
    }
    if lines.is_empty() {
        return usage(&format!("no command {command}"));
    }
    write_out(format!("usage: mi-sdk [--config FILE] COMMAND\n{}\n", lines.join("\n")).as_bytes())
}

fn printed(text: String) -> Printed {
    Printed { text, failure: None }
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

fn opt(rest: &[String], name: &str) -> Result<Option<String>, Stop> {
    match rest.iter().position(|a| a == name) {
        Some(i) => rest.get(i + 1).cloned().map(Some).ok_or_else(|| Stop::Usage(format!("{name} needs a value"))),
        None => Ok(None),
    }
}

fn reconcile(cfg: Config, rest: &[String], json: bool) -> Result<Printed, Stop> {
    // Every word is an option with its value: a mistyped option must not leave a
    // journal out of the books unnoticed.
    let mut journals = Vec::new();
    for pair in rest.chunks(2) {
        match pair {
            [flag, value] if ["--date", "--to", "--journal"].contains(&flag.as_str()) && !value.starts_with("--") => {
                if flag == "--journal" {
                    journals.push(value.into());
                }
            }
            [flag, ..] => {
                return Err(Stop::Usage(format!("reconcile: {flag} is not --date, --to or --journal with a value")))
            }
            [] => {}
        }
    }
    let from = date_arg(&opt(rest, "--date")?.ok_or_else(|| Stop::Usage("reconcile needs --date YYYY-MM-DD".into()))?)?;
    let to = opt(rest, "--to")?.map(|d| date_arg(&d)).transpose()?;
    Ok(ops::reconcile::reconcile(cfg, &from, to.as_deref(), journals, json)?)
}

fn id_arg(rest: &[String]) -> Result<i64, Stop> {
    rest.first().and_then(|a| a.parse().ok()).ok_or_else(|| Stop::Usage("give a request id".into()))
}

fn date_arg(d: &str) -> Result<String, Stop> {
    mi_sdk::parse_day(d, "the date").map(|_| d.to_string()).map_err(|e| Stop::Usage(e.message))
}

fn filter(rest: &[String]) -> Result<Filter, Stop> {
    let mut named = std::collections::HashMap::new();
    for key in ["state", "infno", "date", "msgid", "limit"] {
        if let Some(v) = opt(rest, &format!("--{key}"))? {
            named.insert(key, v);
        }
    }
    Filter::from_named(|k| named.get(k).cloned()).map_err(|e| Stop::Usage(format!("--{}", e.message)))
}

fn report(cfg: &Config, rest: &[String], json: bool) -> Result<Printed, Stop> {
    let day = match rest.first() {
        Some(d) => date_arg(d)?,
        None => mi_sdk::Clock::system().today(),
    };
    Ok(printed(ops::report::day(cfg, &ops::journal(cfg)?, &day, json)?))
}

/// The CSV bytes: UTF-8 with a BOM unless `--encoding` says otherwise. Excel on
/// Chinese Windows reads a CSV without a BOM as GBK and garbles UTF-8 names.
fn export(cfg: &Config, rest: &[String]) -> Result<Vec<u8>, Stop> {
    let from = date_arg(&opt(rest, "--from")?.ok_or_else(|| Stop::Usage("export needs --from DATE".into()))?)?;
    let to = match opt(rest, "--to")? {
        Some(t) => date_arg(&t)?,
        None => from.clone(),
    };
    let encoding = opt(rest, "--encoding")?.unwrap_or_else(|| "utf8-bom".into());
    let csv = ops::report::export(cfg, &from, &to)? + "\n";
    match encoding.as_str() {
        "utf8-bom" => Ok([b"\xEF\xBB\xBF".as_slice(), csv.as_bytes()].concat()),
        "utf8" => Ok(csv.into_bytes()),
        "gbk" => Ok(mi_sdk::Charset::Gbk.encode(&csv)),
        other => Err(Stop::Usage(format!("--encoding is utf8-bom, utf8 or gbk, not {other}"))),
    }
}

fn catalog(cfg: Config, rest: &[String], json: bool) -> Result<Printed, Stop> {
    let infno = rest
        .first()
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .ok_or_else(|| Stop::Usage("catalog needs a transaction code, e.g. catalog 1301 --out DIR".into()))?;
    let out = opt(rest, "--out")?.ok_or_else(|| Stop::Usage("catalog needs --out DIR".into()))?;
    let since = opt(rest, "--since")?;
    Ok(printed(ops::catalog::run(cfg, &infno, since.as_deref(), Path::new(&out), json)?))
}

fn serve(cfg: Config, rest: &[String]) -> Result<Printed, Stop> {
    if let Some(addr) = opt(rest, "--http")? {
        ops::http::serve(cfg, &addr, |at| eprintln!("mi-sdk: serving http://{at} (Ctrl-C to stop)"))?;
        eprintln!("mi-sdk: stopped");
        return Ok(printed(String::new()));
    }
    let dir = opt(rest, "--watch")?.ok_or_else(|| Stop::Usage("serve needs --watch DIR or --http ADDR".into()))?;
    ops::dropbox::serve(cfg, Path::new(&dir), || eprintln!("mi-sdk: watching {dir} (Ctrl-C to stop)"))?;
    eprintln!("mi-sdk: stopped");
    Ok(printed(String::new()))
}

fn service(config: Option<&str>, exe_dir: &Path, rest: &[String]) -> Result<Printed, Stop> {
    use ops::service::{self, Serves, Spec};
    let name = opt(rest, "--name")?.unwrap_or_else(|| service::DEFAULT_NAME.to_string());
    service::check_name(&name)?;
    let text = match rest.first().map(String::as_str) {
        Some(action @ ("install" | "run")) => {
            let serves = match (opt(rest, "--watch")?, rest.iter().any(|a| a == "--bridge"), opt(rest, "--http")?) {
                (Some(watch), false, None) => Serves::Folder(watch.into()),
                (None, true, None) => Serves::Bridge(odbc::open),
                (None, false, Some(addr)) => Serves::Http(addr),
                _ => {
                    return Err(Stop::Usage(format!(
                        "service {action} needs one of --watch DIR, --bridge, --http ADDR"
                    )))
                }
            };
            let config = Config::file_for(config, exe_dir)?;
            if action == "run" {
                mi_sdk::ffi::run_service(Spec { name, config, serves })?;
                return Ok(printed(String::new()));
            }
            service::install(&Spec::checked(&name, &config, serves)?)?
        }
        Some("start") => service::start(&name)?,
        Some("stop") => service::stop(&name)?,
        Some("uninstall") => service::uninstall(&name)?,
        _ => return Err(Stop::Usage("service install, start, stop or uninstall?".into())),
    };
    Ok(printed(text.trim_end().to_string()))
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
