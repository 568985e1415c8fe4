//! The HTTP service (`mi-sdk serve --http`) started as the IT desk starts it, and
//! requests to it as a browser makes them.

use super::{target_dir, Env};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub const TOKEN: &str = "http-TOKEN-0123456789";
pub const ORIGIN: &str = "http://his.example:8080";

/// `mi-sdk serve --http 127.0.0.1:0` on `env`'s simulator; the base URL it serves.
pub struct Served {
    child: Child,
    pub base: String,
}

impl Served {
    /// Sends SIGTERM, as a service manager stops it, and waits up to `secs` for it
    /// to end; its exit status, or `None` if it had not ended by then.
    pub fn terminate(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < until {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(env: &Env, http: Value) -> Served {
    serve_with(env, json!({"http": http}))
}

/// As [`serve`], with `patch` merged into the whole config.
pub fn serve_with(env: &Env, patch: Value) -> Served {
    let config = env.dir.path().join("mi_sdk.json");
    let cfg = env.config(patch);
    std::fs::write(&config, cfg.to_string()).unwrap();
    let mut child = Command::new(target_dir().join("mi-sdk"))
        .arg("--config")
        .arg(&config)
        .args(["serve", "--http", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    err.read_line(&mut line).unwrap();
    // Read on, so that what the service says later (as it stops) has somewhere to go.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let base = line
        .strip_prefix("mi-sdk: serving ")
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Served { child, base }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// A request: its status, its JSON body, and its headers of interest.
pub fn ask(
    method: &str,
    url: &str,
    token: Option<&str>,
    origin: Option<&str>,
    body: Option<&str>,
) -> (u16, Value, String) {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    let req = req.body(body.unwrap_or("").to_string()).unwrap();
    let mut resp = agent().run(req).unwrap();
    let cors =
        resp.headers().get("Access-Control-Allow-Origin").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), cors)
}
