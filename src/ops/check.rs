//! `mi-sdk check`: what an installation needs, one line each: the config, the
//! journal, the gateway (reached through the SDK's own transport, so a bureau's CA
//! in `gateway.ca_file` and `tls_verify` apply as they do to calls), the clock
//! against the gateway's, and optionally a sign-in.

use super::Printed;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Code;
use crate::journal::{Journal, Options};
use crate::protocol::signin;
use crate::sdk::status::strip_userinfo;
use crate::sdk::Sdk;
use crate::transport::{Failure, Transport};
use std::path::Path;
use std::time::Duration;

/// How long the gateway may take to answer the check's GET.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// Gateways refuse signatures whose timestamp is minutes off.
const MAX_SKEW_S: i64 = 60;

/// Runs every check, handing each line to `print` as soon as it is known (the
/// gateway may take its time); fails if any check fails.
pub fn run(cfg: Config, sign_in: bool, print: &mut dyn FnMut(&str)) -> Printed {
    let clock = Clock::system();
    let mut failed = 0;
    let mut line = |ok: bool, what: &str, detail: String| {
        print(&format!("{} {what:<8} {detail}", if ok { "OK  " } else { "FAIL" }));
        failed += usize::from(!ok);
    };
    line(
        true,
        "config",
        format!(
            "institution {}, gateway profile {}, region {}, url style {}, sign-in {}",
            cfg.institution.fixmedins_code,
            cfg.gateway.profile.as_str(),
            if cfg.region.is_empty() { "none (national defaults)" } else { &cfg.region },
            cfg.gateway.style().as_str(),
            cfg.sign_in.style.as_str()
        ),
    );
    let jp = cfg.journal_path();
    if jp.is_file() {
        match Journal::open(&jp, Options::of(&cfg, clock.clone()))
            .and_then(|j| j.check_writable().map(|()| (j.node(), j.sealed())))
        {
            Ok((node, sealed)) => {
                line(true, "journal", format!("{} is writable", jp.display()));
                line(true, "node", format!("msgid node {:02} (from the {})", node.id, node.source.as_str()));
                let key = cfg.journal_key_path();
                let seal = if sealed {
                    format!(
                        "patients' data sealed with the key in {} (back it up apart from the journal)",
                        key.display()
                    )
                } else {
                    "journal.seal is false: new requests are kept in clear".to_string()
                };
                line(true, "sealing", seal);
            }
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
        let node = match cfg.node_id {
            Some(n) => format!("msgid node {n:02} (from the config)"),
            None => "msgid node chosen by the journal when mi_init creates it".to_string(),
        };
        line(true, "node", node);
    }
    let url = strip_userinfo(&cfg.gateway.url);
    let t0 = clock.mono();
    let probe =
        Transport::new(&cfg.gateway, cfg.ca_path().as_deref(), clock.clone()).map_err(|e| e.message).and_then(|t| {
            t.probe(PROBE_TIMEOUT).map_err(|f| match f {
                Failure::NeverSent(why) | Failure::MaybeProcessed(why) => why,
            })
        });
    match probe {
        Ok(p) => {
            let ms = clock.mono().since(t0).as_millis();
            line(true, "gateway", format!("answered HTTP {} in {ms} ms", p.status));
            match p.date.as_deref().and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok()) {
                Some(theirs) => {
                    let skew = (clock.unix_ms() - theirs.timestamp_millis()) / 1000;
                    line(skew.abs() <= MAX_SKEW_S, "clock", format!("{skew:+} s against the gateway's Date header"));
                }
                None => line(true, "clock", "the gateway sends no Date header; not compared".into()),
            }
        }
        Err(why) => line(false, "gateway", format!("{url}: {why}")),
    }
    if sign_in {
        let i = cfg.institution.clone();
        match Sdk::start(cfg) {
            Ok(sdk) => {
                // The region's 9001 shape, as the automatic sign-in sends it.
                let input = signin::input(sdk.config(), &i.opter).to_string();
                match sdk.call_sync("9001", &input) {
                    Ok(o) if o.code == Code::Ok => line(true, "sign-in", format!("operator {} signed in", i.opter)),
                    Ok(o) => line(false, "sign-in", format!("{}: {}", o.code.name(), o.output)),
                    Err(e) => line(false, "sign-in", e.to_string()),
                }
                sdk.shutdown(Duration::from_secs(5));
            }
            Err(e) => line(false, "sign-in", e.to_string()),
        }
    }
    let failure = (failed > 0).then(|| format!("{failed} check(s) failed"));
    Printed { text: String::new(), failure }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_line_names_the_region_and_its_styles() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"region":"guangzhou","sign_in":{"userid":"u1","password":"pw"},
            "gateway":{"url":"http://127.0.0.1:1/x","connect_timeout_ms":200},
            "institution":{"fixmedins_code":"H44010000001","fixmedins_name":"示例医院","mdtrtarea_admvs":"440100","opter":"0001","opter_name":"收费员"}}"#;
        let cfg = Config::from_json(text, dir.path()).unwrap();
        let mut lines = Vec::new();
        run(cfg, false, &mut |l| lines.push(l.to_string()));
        assert!(
            lines[0].starts_with("OK   config")
                && lines[0].contains("region guangzhou, url style append_infno, sign-in guangzhou"),
            "{lines:?}"
        );
        assert!(!lines.concat().contains("pw\""), "{lines:?}");
    }
}
