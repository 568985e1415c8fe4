//! A real browser for the pages' tests: Debian's headless Chromium, driven over its
//! DevTools protocol (JSON over a WebSocket), at the 1366x768 of a cashier's
//! screen. Confirmation dialogs are answered as a person would: accepted or
//! dismissed, and their text kept for the test to read.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

pub const WIDTH: u32 = 1366;
pub const HEIGHT: u32 = 768;

pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    _profile: tempfile::TempDir,
    /// How the next confirmation dialogs are answered.
    pub accept_dialogs: bool,
    /// The text of every dialog shown so far.
    pub dialogs: Vec<String>,
    /// Console errors and uncaught exceptions of the page.
    pub errors: Vec<String>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium, if it is installed (else SKIPPED, or a failure under MI_REQUIRE_ALL=1).
pub fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()));
    super::require(found.is_some(), "chromium not found").then(|| PathBuf::from(found.unwrap()))
}

impl Browser {
    /// A fresh headless Chromium (its own profile) with one blank page.
    pub fn start(exe: &Path, lang: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(exe)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                &format!("--lang={lang}"),
                &format!("--window-size={WIDTH},{HEIGHT}"),
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let ws_url = loop {
            line.clear();
            assert!(err.read_line(&mut line).unwrap() > 0, "chromium ended before it listened");
            if let Some(u) = line.trim().strip_prefix("DevTools listening on ") {
                break u.to_string();
            }
        };
        // Chromium keeps writing to stderr; left unread, it would block.
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        let port = ws_url.split(':').nth(2).and_then(|p| p.split('/').next()).unwrap().to_string();
        let page_ws = wait_for_page(&port);
        let stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
        let (ws, _) = tungstenite::client(page_ws.as_str(), stream).expect("the page's DevTools socket");
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            _profile: profile,
            accept_dialogs: true,
            dialogs: Vec::new(),
            errors: Vec::new(),
        };
        for m in ["Page.enable", "Runtime.enable"] {
            b.call(m, json!({}));
        }
        // The language a Chinese Windows would give its pages (headless Chromium
        // does not take it from --lang alone).
        let ua = b.call("Browser.getVersion", json!({}))["userAgent"].as_str().unwrap().to_string();
        b.call("Emulation.setUserAgentOverride", json!({"userAgent": ua, "acceptLanguage": lang}));
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false}),
        );
        b
    }

    /// Sends one DevTools command and waits for its answer, answering dialogs
    /// and noting errors while it waits.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// As [`Browser::call`]; the protocol's error, if it answers with one.
    pub fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(id, method, params);
        loop {
            let m = self.ws.read().expect("the DevTools socket answers");
            let Message::Text(text) = m else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"].as_u64() == Some(id) {
                return match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
            self.event(&v);
        }
    }

    fn send(&mut self, id: u64, method: &str, params: Value) {
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::Text(msg)).unwrap();
    }

    fn event(&mut self, v: &Value) {
        match v["method"].as_str() {
            Some("Page.javascriptDialogOpening") => {
                self.dialogs.push(v["params"]["message"].as_str().unwrap_or("").to_string());
                // Answered now: the page is stopped until it is.
                self.next_id += 1;
                let (id, accept) = (self.next_id, self.accept_dialogs);
                self.send(id, "Page.handleJavaScriptDialog", json!({"accept": accept}));
            }
            Some("Runtime.exceptionThrown") => self.errors.push(v["params"]["exceptionDetails"].to_string()),
            Some("Runtime.consoleAPICalled") if v["params"]["type"] == "error" => {
                self.errors.push(v["params"]["args"].to_string())
            }
            _ => {}
        }
    }

    pub fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
    }

    /// A JavaScript expression's value (promises awaited).
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true, "awaitPromise": true}));
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits up to `secs` for `expr` to be true.
    pub fn wait_for(&mut self, expr: &str, secs: u64) -> bool {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            // While a page loads its context may be gone: asked again.
            let r = self.try_call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true}));
            if r.is_ok_and(|r| r["result"]["value"] == Value::Bool(true)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Clicks the middle of the element `selector` names, with the mouse.
    pub fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        let at = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null; e.scrollIntoView({{block: 'center'}});
               const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ));
        let (x, y) =
            (at[0].as_f64().unwrap_or_else(|| panic!("nothing to click at {selector}")), at[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Types `text` into the field `selector` names (its old text replaced).
    pub fn fill(&mut self, selector: &str, text: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        self.eval(&format!("(() => {{ const e = document.querySelector({sel}); e.focus(); e.select(); }})()"));
        self.call("Input.insertText", json!({"text": text}));
    }

    /// A screenshot of the viewport, written to `path`; its width and height.
    pub fn screenshot(&mut self, path: &Path) -> (u32, u32) {
        use base64::Engine;
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &png).unwrap();
        let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        (be(16), be(20))
    }
}

/// The WebSocket of the browser's first page, once it has one.
fn wait_for_page(port: &str) -> String {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let list: Value = ureq::get(format!("http://127.0.0.1:{port}/json/list"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let page = list.as_array().and_then(|l| l.iter().find(|t| t["type"] == "page")).cloned();
        if let Some(ws) = page.and_then(|p| p["webSocketDebuggerUrl"].as_str().map(str::to_string)) {
            return ws;
        }
        assert!(Instant::now() < until, "chromium opened no page");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Where the tests' screenshots are kept for people to look at.
pub fn screenshot_dir() -> PathBuf {
    super::target_dir().join("screenshots")
}
