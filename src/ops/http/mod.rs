//! `mi-sdk serve --http ADDR`: the C ABI's calls as JSON over HTTP on the cashier's
//! PC, for a HIS that runs in a browser and cannot load a DLL. Every request carries
//! the config's token; browser pages are let in only from the configured origins;
//! bodies and the requests handled at once are bounded; every refusal is a JSON
//! error. docs/http.md has the routes and their answers (docs/openapi.json).

mod wire;

use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::journal::Journal;
use crate::sdk::Sdk;
use serde_json::{json, Value};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wire::{Refused, Reply, Request};

/// The API's routes (method, path), as docs/openapi.json lists them; the monitor
/// page's files are not among them.
pub const ROUTES: [(&str, &str); 9] = [
    ("POST", "/v1/call/{infno}"),
    ("POST", "/v1/submit/{infno}"),
    ("GET", "/v1/result/{id}"),
    ("GET", "/v1/request/{id}"),
    ("POST", "/v1/reverse/{id}"),
    ("GET", "/v1/status"),
    ("GET", "/v1/requests"),
    ("GET", "/v1/report"),
    ("POST", "/v1/reconcile"),
];

/// Serves until Ctrl-C / SIGTERM; `started` is told the address listened on.
pub fn serve(cfg: Config, addr: &str, started: impl FnOnce(SocketAddr)) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::Release))
        .map_err(|e| Error::config(format!("cannot watch for Ctrl-C / SIGTERM: {e}")))?;
    serve_until(cfg, addr, &stop, started)
}

/// The address to listen on, once the config can serve the API there: a token
/// set, and loopback unless `http.allow_remote`.
pub fn check(cfg: &Config, addr: &str) -> Result<SocketAddr> {
    let listen = listen_address(cfg, addr)?;
    if cfg.http.token.is_empty() {
        return Err(Error::config(
            "config key `http.token`: must be set (16 characters or more) for the HTTP API: every request carries it",
        ));
    }
    Ok(listen)
}

/// Serves until `stop` is set.
pub fn serve_until(cfg: Config, addr: &str, stop: &AtomicBool, started: impl FnOnce(SocketAddr)) -> Result<()> {
    let listen = check(&cfg, addr)?;
    let h = &cfg.http;
    let listener = wire::listen(listen).map_err(|e| Error::config(format!("cannot listen on {listen}: {e}")))?;
    let bound = listener.local_addr().unwrap_or(listen);
    // The monitor page the service serves itself is of its own origin.
    let mut origins = h.allowed_origins.clone();
    origins.push(format!("http://{bound}"));
    if bound.ip().is_loopback() {
        origins.push(format!("http://localhost:{}", bound.port()));
    }
    let max_body = usize::try_from(h.max_body_kb).unwrap_or(usize::MAX).saturating_mul(1024);
    let sdk = Sdk::start(cfg.clone())?;
    let reads = match Readers::open(&cfg) {
        Ok(r) => r,
        Err(e) => {
            sdk.shutdown(crate::sdk::SERVICE_SHUTDOWN);
            return Err(e);
        }
    };
    let api = Api {
        token: h.token.expose().as_bytes().to_vec(),
        origins,
        // Listening beyond loopback, the IT desk names the PC as it likes: its page
        // is of whatever origin the Host it asked for makes.
        host_origin: h.allow_remote,
        max_concurrent: h.max_concurrent as usize,
        busy: AtomicUsize::new(0),
        sdk,
        reads,
    };
    started(bound);
    std::thread::scope(|s| {
        // Stopping does not wait for the calls in flight beyond the SDK's own
        // shutdown: it is told at once, and they end with MI_E_SHUTDOWN.
        s.spawn(|| {
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(100));
            }
            api.sdk.shutdown(crate::sdk::SERVICE_SHUTDOWN);
        });
        wire::serve(listener, max_body, stop, &api);
    });
    Ok(())
}

/// The address to listen on: loopback unless the config allows others.
fn listen_address(cfg: &Config, addr: &str) -> Result<SocketAddr> {
    let a =
        addr.to_socket_addrs().ok().and_then(|mut a| a.next()).ok_or_else(|| {
            Error::invalid(format!("--http {addr}: not an address to listen on (e.g. 127.0.0.1:8765)"))
        })?;
    if !a.ip().is_loopback() && !cfg.http.allow_remote {
        return Err(Error::config(format!(
            "--http {addr}: not a loopback address; the API serves the PC it runs on \
             (set http.allow_remote to listen on others)"
        )));
    }
    Ok(a)
}

/// Connections of the service's own that lists and reports read the journal
/// through, opened once the SDK has made or migrated it: a long list or a busy day's
/// report neither waits for nor holds up the connection the cashiers' calls are
/// journaled on (WAL lets them read while it writes), a monitor refreshing every
/// few seconds opens nothing, and one slow report does not queue the others.
struct Readers(Vec<std::sync::Mutex<Journal>>);

impl Readers {
    const HOW_MANY: usize = 3;

    fn open(cfg: &Config) -> Result<Readers> {
        (0..Readers::HOW_MANY)
            .map(|_| super::journal(cfg).map(std::sync::Mutex::new))
            .collect::<Result<_>>()
            .map(Readers)
    }

    /// `f` on a free connection, or on the first once it is free.
    fn with<T>(&self, f: impl FnOnce(&Journal) -> T) -> T {
        use std::sync::TryLockError;
        // A handler that panicked poisoned its connection's lock, not the connection.
        let free = self.0.iter().find_map(|r| match r.try_lock() {
            Ok(j) => Some(j),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        });
        let j = free.unwrap_or_else(|| self.0[0].lock().unwrap_or_else(|p| p.into_inner()));
        f(&j)
    }
}

struct Api {
    sdk: Sdk,
    reads: Readers,
    token: Vec<u8>,
    origins: Vec<String>,
    host_origin: bool,
    max_concurrent: usize,
    busy: AtomicUsize,
}

/// One of the `http.max_concurrent` places, given back when dropped (a panic too).
struct Place<'a>(&'a AtomicUsize);

impl<'a> Place<'a> {
    fn take(busy: &'a AtomicUsize, max: usize) -> Option<Place<'a>> {
        if busy.fetch_add(1, Ordering::AcqRel) >= max {
            busy.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Place(busy))
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Compares in time that depends on the length only, not on where they differ.
fn same_secret(given: &[u8], token: &[u8]) -> bool {
    given.len() == token.len() && given.iter().zip(token).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
}

impl Api {
    /// The request's origin, if a browser sent one and it is let in; `Err` if not.
    fn cors(&self, req: &Request) -> std::result::Result<Option<String>, String> {
        match req.header("Origin") {
            None => Ok(None),
            Some(o) if self.allowed(o, req.header("Host")) => Ok(Some(o.to_string())),
            Some(o) => Err(o.to_string()),
        }
    }

    /// Whether pages of origin `o` may call: a configured origin, the service's
    /// own, or (listening beyond loopback) that of the `Host` the caller asked for.
    fn allowed(&self, o: &str, host: Option<&str>) -> bool {
        self.origins.iter().any(|a| a == o) || (self.host_origin && host.is_some_and(|h| o == format!("http://{h}")))
    }
}

impl wire::Handler for Api {
    fn refused(&self, r: Refused) -> Reply {
        let code = match r.status {
            503 => Code::Busy,
            _ => Code::InvalidArgument,
        };
        // A page of an allowed origin reads why (a fee upload too large, say).
        let cors = r.origin.filter(|o| self.allowed(o, None));
        json_reply(r.status, &refusal(&Error::new(code, r.why)), cors.as_deref())
    }

    fn handle(&self, req: Request) -> Reply {
        let cors = match self.cors(&req) {
            Ok(c) => c,
            Err(o) => {
                let e = Error::invalid(format!("origin {o} is not in http.allowed_origins"));
                return json_reply(403, &refusal(&e), None);
            }
        };
        let cors = cors.as_deref();
        if req.method == "OPTIONS" {
            return Reply { status: 204, headers: cors_headers(cors), body: Vec::new() };
        }
        // The monitor page's own files carry no data: they are served without the
        // token, which the page then asks for and sends with every call it makes.
        if req.method == "GET" || req.method == "HEAD" {
            if let Some(file) = super::monitor::file(req.url.split('?').next().unwrap_or("")) {
                return file_reply(file);
            }
        }
        let given = req
            .header("Authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| req.header("X-MI-Token"))
            .unwrap_or_default();
        if !same_secret(given.trim().as_bytes(), &self.token) {
            let e = Error::invalid("no valid token: send the config's http.token as `Authorization: Bearer <token>`");
            return json_reply(401, &refusal(&e), cors);
        }
        let Some(_place) = Place::take(&self.busy, self.max_concurrent) else {
            let e = Error::new(
                Code::Busy,
                format!("{} requests are being handled already (http.max_concurrent): try again", self.max_concurrent),
            );
            return json_reply(429, &refusal(&e), cors);
        };
        // A bug met by one request answers it with a JSON 500, and frees its place.
        let routed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            route(&self.sdk, &self.reads, &req.method, &req.url, &req.body)
        }));
        let (status, answer, allow) = routed.unwrap_or_else(|_| {
            log::error!("http: the handler of {} {} panicked", req.method, req.url.split('?').next().unwrap_or(""));
            (
                500,
                refusal(&Error::new(Code::Internal, "the service met a bug; the request may not have been sent")),
                None,
            )
        });
        let mut reply = json_reply(status, &answer, cors);
        if let Some(m) = allow {
            reply.headers.push(("Allow", m.to_string()));
        }
        reply
    }
}

/// The routes, and what each answers: `(HTTP status, JSON, the method allowed
/// when the one asked is not)`.
fn route(sdk: &Sdk, reads: &Readers, method: &str, url: &str, body: &[u8]) -> (u16, Value, Option<&'static str>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let want = |m: &'static str, f: &dyn Fn() -> Result<(Code, Value)>| -> (u16, Value, Option<&'static str>) {
        if method != m {
            let e = Error::invalid(format!("{method} is not allowed here: {m}"));
            return (405, refusal(&e), Some(m));
        }
        match f() {
            Ok((code, v)) => (status_of(code), v, None),
            Err(e) => (status_of(e.code), refusal(&e), None),
        }
    };
    let text = || std::str::from_utf8(body).map_err(|_| Error::invalid("the body is not UTF-8 text"));
    let id = |s: &str| s.parse::<i64>().map_err(|_| Error::invalid(format!("\"{s}\" is not a request id")));
    match parts.as_slice() {
        ["v1", "call", infno] => want("POST", &|| Ok(outcome(sdk.call_sync(infno, text()?)))),
        ["v1", "submit", infno] => want("POST", &|| {
            let priority = query_value(query, "priority").map_or(Ok(0), |p| {
                p.parse::<i32>().map_err(|_| Error::invalid(format!("priority \"{p}\" is not a number")))
            })?;
            let id = sdk.call_async(infno, text()?, priority)?;
            Ok((Code::Ok, json!({"mi_code": 0, "mi_code_name": Code::Ok.name(), "request_id": id})))
        }),
        ["v1", "result", n] => want("GET", &|| Ok(outcome(sdk.get_result(id(n)?)))),
        ["v1", "request", n] => want("GET", &|| Ok(document(&sdk.get_request(id(n)?)?.to_json()))),
        ["v1", "reverse", n] => want("POST", &|| Ok(outcome(sdk.reverse(id(n)?)))),
        ["v1", "status"] => want("GET", &|| Ok(document(&sdk.status()?.to_json()))),
        ["v1", "requests"] => want("GET", &|| {
            let f = crate::journal::Filter::from_named(|k| query_value(query, k).map(str::to_string))?;
            Ok(document(&reads.with(|j| super::requests::list(sdk.config(), j, &f, true))?))
        }),
        ["v1", "report"] => want("GET", &|| {
            let day = match query_value(query, "date") {
                Some(d) => crate::clock::parse_day(d, "date").map(|_| d.to_string())?,
                None => crate::clock::Clock::system().today(),
            };
            Ok(document(&reads.with(|j| super::report::day(sdk.config(), j, &day, true))?))
        }),
        ["v1", "reconcile"] => want("POST", &|| {
            let spec = crate::reconcile::Spec::parse(text()?)?;
            Ok(document(&crate::reconcile::run(sdk, &spec)?.to_json()))
        }),
        _ => {
            let e = Error::new(Code::NotFound, format!("no such route: {path} (docs/http.md lists them)"));
            (404, refusal(&e), None)
        }
    }
}

/// A call's outcome as the ABI gives it: its code, its request id and its output.
/// A request the SDK refused before journaling it answers as `mi_call_sync` does.
fn outcome(r: Result<crate::call::Outcome>) -> (Code, Value) {
    let o = r.unwrap_or_else(|e| crate::call::Outcome { request_id: 0, code: e.code, output: Sdk::error_output(&e) });
    let v = json!({"mi_code": o.code.as_i32(), "mi_code_name": o.code.name(), "request_id": o.request_id,
           "output": parsed(&o.output)});
    (o.code, v)
}

/// A document the ABI answers with `MI_OK` (a record, the status, a report).
fn document(text: &str) -> (Code, Value) {
    (Code::Ok, json!({"mi_code": 0, "mi_code_name": Code::Ok.name(), "output": parsed(text)}))
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// The HTTP status of an ABI code: the SDK's answers (a platform's refusal, an
/// uncertain settlement) are 200 with the code in the body; the caller's mistakes
/// and the service's state are 4xx and 503.
fn status_of(code: Code) -> u16 {
    match code {
        Code::InvalidArgument => 400,
        Code::NotFound => 404,
        Code::Busy => 429,
        Code::NotInitialized | Code::Shutdown => 503,
        Code::Internal => 500,
        _ => 200,
    }
}

/// A refusal: its code and message.
fn refusal(e: &Error) -> Value {
    json!({"mi_code": e.code.as_i32(), "mi_code_name": e.code.name(), "error": e.message})
}

fn cors_headers(origin: Option<&str>) -> Vec<(&'static str, String)> {
    let Some(o) = origin else { return Vec::new() };
    vec![
        ("Access-Control-Allow-Origin", o.to_string()),
        ("Vary", "Origin".into()),
        ("Access-Control-Allow-Methods", "GET, POST, OPTIONS".into()),
        ("Access-Control-Allow-Headers", "Authorization, Content-Type, X-MI-Token".into()),
        ("Access-Control-Max-Age", "600".into()),
    ]
}

fn json_reply(status: u16, body: &Value, cors: Option<&str>) -> Reply {
    let mut headers = vec![("Content-Type", "application/json; charset=utf-8".to_string())];
    headers.extend(cors_headers(cors));
    Reply { status, headers, body: body.to_string().into_bytes() }
}

/// One of the monitor page's files, with headers that keep the page to its own
/// files (no outside script, style or frame: it holds a reverse button).
fn file_reply(file: &super::monitor::File) -> Reply {
    let csp = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
    let headers = vec![
        ("Content-Type", file.content_type.to_string()),
        ("Content-Security-Policy", csp.to_string()),
        ("X-Frame-Options", "DENY".into()),
        ("X-Content-Type-Options", "nosniff".into()),
        ("Referrer-Policy", "no-referrer".into()),
        ("Cache-Control", "no-store".into()),
    ];
    Reply { status: 200, headers, body: file.body.as_bytes().to_vec() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_compared_whole() {
        assert!(same_secret(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_secret(b"0123456789abcdeX", b"0123456789abcdef"));
        assert!(!same_secret(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!same_secret(b"", b"0123456789abcdef"));
    }

    #[test]
    fn codes_map_to_statuses_and_queries_are_read() {
        assert_eq!((status_of(Code::Ok), status_of(Code::Business), status_of(Code::Uncertain)), (200, 200, 200));
        let refused = [Code::InvalidArgument, Code::NotFound, Code::Busy, Code::Shutdown].map(status_of);
        assert_eq!(refused, [400, 404, 429, 503]);
        assert_eq!(query_value("a=1&priority=5", "priority"), Some("5"));
        assert_eq!(query_value("priorityx=5", "priority"), None);
    }
}
