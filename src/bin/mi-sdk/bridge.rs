//! `mi-sdk bridge script|install|uninstall|run`: the arguments, and the ODBC
//! connections the bridge runs on.

use super::odbc::Odbc;
use super::{printed, Stop};
use mi_sdk::bridge::{self, dialect, Database, Dialect, Names, Options, Sql};
use mi_sdk::ops::Printed;
use mi_sdk::Config;
use std::path::Path;
use std::time::Duration;

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

    fn names(&self) -> Result<Names, Stop> {
        Names::new(self.get("--prefix").unwrap_or("mi")).map_err(|e| Stop::Usage(e.message))
    }

    fn dialect(&self) -> Result<Option<Dialect>, Stop> {
        self.get("--dialect").map(Dialect::parse).transpose().map_err(|e| Stop::Usage(e.message))
    }

    /// `--dsn`, else `MI_BRIDGE_DSN` (which keeps a password out of the process list).
    fn dsn(&self, action: &str) -> Result<String, Stop> {
        self.get("--dsn").map(str::to_owned).or_else(|| std::env::var("MI_BRIDGE_DSN").ok()).ok_or_else(|| {
            Stop::Usage(format!("bridge {action} needs --dsn \"ODBC connection string\" (or MI_BRIDGE_DSN)"))
        })
    }

    fn number(&self, name: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64, Stop> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => {
                v.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                    Stop::Usage(format!("{name} takes a number from {} to {}", range.start(), range.end()))
                })
            }
        }
    }
}

pub fn command(config: Option<&str>, exe_dir: &Path, rest: &[String]) -> Result<Printed, Stop> {
    let action = rest.first().map(String::as_str).unwrap_or("");
    if allowed(action).0.is_empty() {
        return Err(Stop::Usage("bridge script, install, uninstall or run?".into()));
    }
    let args = Args::parse(action, &rest[1..])?;
    let names = args.names()?;
    match action {
        "script" => {
            let d = args
                .dialect()?
                .ok_or_else(|| Stop::Usage("bridge script needs --dialect postgres|mysql|sqlserver|oracle".into()))?;
            let (stmts, what) = if args.flag("--uninstall") {
                (dialect::uninstall(d, &names), "uninstall")
            } else {
                (dialect::install(d, &names), "install")
            };
            Ok(printed(dialect::render(d, &names, &stmts, what).trim_end().to_string()))
        }
        "install" | "uninstall" => {
            let mut db = Odbc::connect(&args.dsn(action)?)?;
            let d = bridge::dialect_of(&mut db, args.dialect()?)?;
            let text = if action == "install" {
                bridge::install(&mut db, d, &names)?
            } else {
                bridge::uninstall(&mut db, d, &names, args.flag("--force"))?
            };
            Ok(printed(text))
        }
        _ => {
            let dsn = args.dsn(action)?;
            let cfg = Config::load(config, exe_dir)?;
            let mut db = Odbc::connect(&dsn)?;
            let d = bridge::dialect_of(&mut db, args.dialect()?)?;
            db.rollback();
            drop(db);
            let opts = Options {
                sql: Sql { dialect: d, names, lease_s: args.number("--lease", 30, 3..=3600)? as u32 },
                node: bridge::node_name(args.get("--node")),
                workers: args.number("--workers", 4, 1..=64)? as usize,
                poll: Duration::from_millis(args.number("--poll-ms", 100, 10..=60_000)?),
            };
            let connect = move || -> mi_sdk::Result<Box<dyn Database>> { Ok(Box::new(Odbc::connect(&dsn)?)) };
            let node = opts.node.clone();
            let n = bridge::serve(cfg, &connect, &opts, || {
                eprintln!("mi-sdk: bridge node {node} running on {} (Ctrl-C to stop)", d.name())
            })?;
            eprintln!("mi-sdk: bridge node {node} stopped; {n} rows finished");
            Ok(printed(String::new()))
        }
    }
}
