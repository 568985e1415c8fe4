//! `mi-sdk bridge script|install|uninstall|run`: the arguments, and the ODBC
//! connections the bridge runs on.

use super::odbc;
use super::{printed, Stop};
use mi_sdk::bridge::{self, dialect, Dialect, Names, Options, Overrides};
use mi_sdk::ops::Printed;
use mi_sdk::Config;
use std::path::Path;

/// The options each action takes with a value, and its flags.
fn allowed(action: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match action {
        "script" => (&["--dialect", "--prefix"], &["--uninstall"]),
        "install" => (&["--dsn", "--dialect", "--prefix"], &[]),
        "uninstall" => (&["--dsn", "--dialect", "--prefix"], &["--force"]),
        "run" => (&["--dsn", "--dialect", "--prefix", "--workers", "--node", "--lease", "--poll-ms"], &[]),
        _ => (&[], &[]),
    }
}

struct Args {
    values: Vec<(String, String)>,
    flags: Vec<String>,
}

impl Args {
    /// Every word is a known option with its value, or a known flag: a mistyped
    /// option must not silently run against the wrong table.
    fn parse(action: &str, rest: &[String]) -> Result<Args, Stop> {
        let (with_value, flags) = allowed(action);
        let mut a = Args { values: Vec::new(), flags: Vec::new() };
        let mut i = 0;
        while i < rest.len() {
            let w = rest[i].as_str();
            if flags.contains(&w) {
                a.flags.push(w.into());
                i += 1;
            } else if with_value.contains(&w) {
                let v = rest
                    .get(i + 1)
                    .filter(|v| !v.starts_with("--"))
                    .ok_or_else(|| Stop::Usage(format!("bridge {action}: {w} needs a value")))?;
                a.values.push((w.into(), v.clone()));
                i += 2;
            } else {
                let known: Vec<&str> = with_value.iter().chain(flags).copied().collect();
                // Only up to an `=`: `--dsn=...;PWD=...` must not be echoed.
                let w = w.split('=').next().unwrap_or_default();
                return Err(Stop::Usage(format!("bridge {action}: {w} is not one of {}", known.join(", "))));
            }
        }
        Ok(a)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
}

impl Args {
    fn overrides(&self) -> Result<Overrides, Stop> {
        let num = |name: &str, range: std::ops::RangeInclusive<u64>| -> Result<Option<u64>, Stop> {
            self.get(name)
                .map(|v| {
                    v.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                        Stop::Usage(format!("{name} takes a number from {} to {}", range.start(), range.end()))
                    })
                })
                .transpose()
        };
        if let Some(d) = self.get("--dialect") {
            Dialect::parse(d).map_err(|e| Stop::Usage(e.message))?;
        }
        if let Some(p) = self.get("--prefix") {
            Names::new(p).map_err(|e| Stop::Usage(e.message))?;
        }
        Ok(Overrides {
            dsn: self.get("--dsn").map(str::to_owned).or_else(|| std::env::var("MI_BRIDGE_DSN").ok()),
            dialect: self.get("--dialect").map(str::to_owned),
            prefix: self.get("--prefix").map(str::to_owned),
            workers: num("--workers", 1..=64)?.map(|n| n as u32),
            lease_s: num("--lease", 10..=3600)?.map(|n| n as u32),
            poll_ms: num("--poll-ms", 10..=60_000)?,
            node: self.get("--node").map(str::to_owned),
        })
    }
}

pub fn command(config: Option<&str>, exe_dir: &Path, rest: &[String]) -> Result<Printed, Stop> {
    let action = rest.first().map(String::as_str).unwrap_or("");
    if allowed(action).0.is_empty() {
        return Err(Stop::Usage("bridge script, install, uninstall or run?".into()));
    }
    let args = Args::parse(action, &rest[1..])?;
    let over = args.overrides()?;
    if action == "script" {
        let d = args
            .get("--dialect")
            .map(Dialect::parse)
            .transpose()?
            .ok_or_else(|| Stop::Usage("bridge script needs --dialect postgres|mysql|sqlserver|oracle".into()))?;
        let names = Names::new(args.get("--prefix").unwrap_or("mi"))?;
        let (stmts, what) = if args.flag("--uninstall") {
            (dialect::uninstall(d, &names), "uninstall")
        } else {
            (dialect::install(d, &names), "install")
        };
        return Ok(printed(dialect::render(d, &names, &stmts, what).trim_end().to_string()));
    }
    // The config's `bridge` section, when there is a config; install and uninstall
    // need none when the connection string is given.
    let cfg = match (&over.dsn, action) {
        (Some(_), "install" | "uninstall") => Config::load(config, exe_dir).ok(),
        _ => Some(Config::load(config, exe_dir)?),
    };
    let section = cfg.as_ref().map(|c| c.bridge.clone()).unwrap_or_default();
    if action == "run" {
        let cfg = cfg.expect("loaded for run");
        let n = bridge::serve(cfg, odbc::open, &over, |o: &Options| {
            eprintln!("mi-sdk: bridge node {} running on {} (Ctrl-C to stop)", o.node, o.sql.dialect.name())
        })?;
        eprintln!("mi-sdk: bridge node stopped; {n} rows finished");
        return Ok(printed(String::new()));
    }
    let mut db = odbc::open(&bridge::dsn_of(&section, &over)?)?;
    let o = bridge::options(&section, &over, db.as_mut())?;
    let text = if action == "install" {
        bridge::install(db.as_mut(), o.sql.dialect, &o.sql.names)?
    } else {
        bridge::uninstall(db.as_mut(), o.sql.dialect, &o.sql.names, args.flag("--force"))?
    };
    Ok(printed(text))
}
