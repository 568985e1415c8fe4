//! `mi-sdk serve --http ADDR`: the C ABI's calls as JSON over HTTP on the cashier's
//! PC, for a HIS that runs in a browser and cannot load a DLL. Every request carries
//! the config's token; browser pages are let in only from the configured origins;
//! bodies and the requests handled at once are bounded; every refusal is a JSON
//! error. docs/http.md has the routes and their answers (docs/openapi.json).

use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::sdk::Sdk;
use serde_json::{json, Value};
use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tiny_http::{Header, Method, Request, Response, Server};

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
    let server = listener(listen)
        .and_then(|l| Server::from_listener(l, None).map_err(std::io::Error::other))
        .map_err(|e| Error::config(format!("cannot listen on {listen}: {e}")))?;
    let bound = server.server_addr().to_ip().unwrap_or(listen);
    // A page the service serves itself (its monitor, to come) is of its own origin.
    let mut origins = h.allowed_origins.clone();
    origins.push(format!("http://{bound}"));
    if bound.ip().is_loopback() {
        origins.push(format!("http://localhost:{}", bound.port()));
    }
    let api = Api {
        token: h.token.expose().as_bytes().to_vec(),
        origins,
        max_body: usize::try_from(h.max_body_kb).unwrap_or(usize::MAX).saturating_mul(1024),
        max_concurrent: h.max_concurrent as usize,
        busy: AtomicUsize::new(0),
        sdk: Sdk::start(cfg)?,
    };
    started(bound);
    // A fixed set of handlers, one more than may work at once: the spare one answers
    // 429 at once while the others are busy, rather than letting callers queue. (A
    // thread started per request cost a tenth of a millisecond a call.)
    std::thread::scope(|s| {
        for n in 0..=api.max_concurrent {
            let (api, server) = (&api, &server);
            let handler = std::thread::Builder::new().name(format!("mi-http-{n}")).stack_size(1 << 20);
            if let Err(e) = handler.spawn_scoped(s, move || take_requests(api, server, stop)) {
                log::warn!("http: handler {n} not started: {e}");
            }
        }
    });
    api.sdk.shutdown(crate::sdk::SERVICE_SHUTDOWN);
    Ok(())
}

/// The listening socket, with Nagle's algorithm off: the server writes an answer
/// in more than one piece, and with it on each answer longer than a kilobyte would
/// wait for the caller's delayed acknowledgement (40 ms). Connections accepted from
/// it inherit the setting.
fn listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // As std's TcpListener::bind does on Unix: a restarted service can listen again
    // at once. (On Windows the option means something else and is left off.)
    #[cfg(unix)]
    s.set_reuse_address(true)?;
    s.set_nodelay(true)?;
    s.bind(&addr.into())?;
    s.listen(128)?;
    Ok(s.into())
}

/// One handler: takes requests until `stop`, refusing one beyond the limit.
fn take_requests(api: &Api, server: &Server, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        let req = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                // A listener that keeps failing must not spin a core.
                log::warn!("http: {e}");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        if api.busy.fetch_add(1, Ordering::AcqRel) >= api.max_concurrent {
            api.busy.fetch_sub(1, Ordering::AcqRel);
            let cors = header(&req, "Origin").filter(|o| api.origins.contains(o));
            let e = Error::new(
                Code::Busy,
                format!("{} requests are being handled already (http.max_concurrent): try again", api.max_concurrent),
            );
            reply(req, 429, refusal(&e), cors.as_deref());
            continue;
        }
        // A bug met by one request must not take its handler, or its place in the
        // count, with it.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(api, req))).is_err() {
            log::error!("http: a request's handler panicked; the request got no answer");
        }
        api.busy.fetch_sub(1, Ordering::AcqRel);
    }
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

struct Api {
    sdk: Sdk,
    token: Vec<u8>,
    origins: Vec<String>,
    max_body: usize,
    max_concurrent: usize,
    busy: AtomicUsize,
}

fn header(req: &Request, name: &'static str) -> Option<String> {
    req.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str().to_string())
}

/// Compares in time that depends on the length only, not on where they differ.
fn same_secret(given: &[u8], token: &[u8]) -> bool {
    given.len() == token.len() && given.iter().zip(token).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
}

fn handle(api: &Api, mut req: Request) {
    let origin = header(&req, "Origin");
    let cors = match &origin {
        None => None,
        Some(o) if api.origins.contains(o) => Some(o.clone()),
        Some(o) => {
            let e = Error::invalid(format!("origin {o} is not in http.allowed_origins"));
            return reply(req, 403, refusal(&e), None);
        }
    };
    let cors = cors.as_deref();
    if *req.method() == Method::Options {
        return reply_empty(req, 204, cors);
    }
    // The monitor page's own files carry no data: they are served without the
    // token, which the page then asks for and sends with every call it makes.
    if *req.method() == Method::Get {
        if let Some(file) = super::monitor::file(req.url().split('?').next().unwrap_or("")) {
            return reply_file(req, file);
        }
    }
    let given = header(&req, "Authorization")
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_string))
        .or_else(|| header(&req, "X-MI-Token"))
        .unwrap_or_default();
    if !same_secret(given.trim().as_bytes(), &api.token) {
        let e = Error::invalid("no valid token: send the config's http.token as `Authorization: Bearer <token>`");
        return reply(req, 401, refusal(&e), cors);
    }
    if req.body_length().is_some_and(|n| n > api.max_body) {
        let e = Error::invalid(format!("the body is larger than http.max_body_kb ({} bytes)", api.max_body));
        return reply(req, 413, refusal(&e), cors);
    }
    let mut body = Vec::new();
    let read = req.as_reader().take(api.max_body as u64 + 1).read_to_end(&mut body);
    if read.is_err() || body.len() > api.max_body {
        let e = Error::invalid(format!("the body is larger than http.max_body_kb ({} bytes), or broken", api.max_body));
        return reply(req, 413, refusal(&e), cors);
    }
    let method = req.method().clone();
    let url = req.url().to_string();
    let (status, answer) = route(&api.sdk, &method, &url, &body);
    reply(req, status, answer, cors)
}

/// The routes, and what each answers: `(HTTP status, JSON)`.
fn route(sdk: &Sdk, method: &Method, url: &str, body: &[u8]) -> (u16, Value) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let want = |m: Method, allowed: &str, f: &dyn Fn() -> Result<(Code, Value)>| -> (u16, Value) {
        if *method != m {
            let e = Error::invalid(format!("{method} is not allowed here: {allowed}"));
            return (405, refusal(&e));
        }
        match f() {
            Ok((code, v)) => (status_of(code), v),
            Err(e) => (status_of(e.code), refusal(&e)),
        }
    };
    let text = || std::str::from_utf8(body).map_err(|_| Error::invalid("the body is not UTF-8 text"));
    let id = |s: &str| s.parse::<i64>().map_err(|_| Error::invalid(format!("\"{s}\" is not a request id")));
    match parts.as_slice() {
        ["v1", "call", infno] => want(Method::Post, "POST", &|| Ok(outcome(sdk.call_sync(infno, text()?)))),
        ["v1", "submit", infno] => want(Method::Post, "POST", &|| {
            let priority = query_value(query, "priority").map_or(Ok(0), |p| {
                p.parse::<i32>().map_err(|_| Error::invalid(format!("priority \"{p}\" is not a number")))
            })?;
            let id = sdk.call_async(infno, text()?, priority)?;
            Ok((Code::Ok, json!({"mi_code": 0, "mi_code_name": Code::Ok.name(), "request_id": id})))
        }),
        ["v1", "result", n] => want(Method::Get, "GET", &|| Ok(outcome(sdk.get_result(id(n)?)))),
        ["v1", "request", n] => want(Method::Get, "GET", &|| Ok(document(&sdk.get_request(id(n)?)?.to_json()))),
        ["v1", "reverse", n] => want(Method::Post, "POST", &|| Ok(outcome(sdk.reverse(id(n)?)))),
        ["v1", "status"] => want(Method::Get, "GET", &|| Ok(document(&sdk.status()?.to_json()))),
        ["v1", "requests"] => want(Method::Get, "GET", &|| {
            let f = crate::journal::Filter::from_named(|k| query_value(query, k).map(str::to_string))?;
            Ok(document(&super::requests::list(sdk.config(), &f, true)?))
        }),
        ["v1", "report"] => want(Method::Get, "GET", &|| {
            let day = match query_value(query, "date") {
                Some(d) => crate::clock::parse_day(d, "date").map(|_| d.to_string())?,
                None => crate::clock::Clock::system().today(),
            };
            Ok(document(&super::report::day(sdk.config(), &day, true)?))
        }),
        ["v1", "reconcile"] => want(Method::Post, "POST", &|| {
            let spec = crate::reconcile::Spec::parse(text()?)?;
            Ok(document(&crate::reconcile::run(sdk, &spec)?.to_json()))
        }),
        _ => (404, refusal(&Error::new(Code::NotFound, format!("no such route: {path} (docs/http.md lists them)")))),
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

fn cors_headers(origin: Option<&str>) -> Vec<Header> {
    let Some(o) = origin else { return Vec::new() };
    [
        ("Access-Control-Allow-Origin", o),
        ("Vary", "Origin"),
        ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
        ("Access-Control-Allow-Headers", "Authorization, Content-Type, X-MI-Token"),
        ("Access-Control-Max-Age", "600"),
    ]
    .iter()
    .filter_map(|(k, v)| Header::from_bytes(k.as_bytes(), v.as_bytes()).ok())
    .collect()
}

fn reply(req: Request, status: u16, body: Value, cors: Option<&str>) {
    let mut r = Response::from_string(body.to_string()).with_status_code(status);
    if let Ok(h) = Header::from_bytes("Content-Type", "application/json; charset=utf-8") {
        r.add_header(h);
    }
    for h in cors_headers(cors) {
        r.add_header(h);
    }
    if let Err(e) = req.respond(r) {
        log::debug!("http: the answer could not be sent: {e}");
    }
}

/// One of the monitor page's files, with headers that keep the page to its own
/// files (no outside script, style or frame: it holds a reverse button).
fn reply_file(req: Request, file: &super::monitor::File) {
    let mut r = Response::from_string(file.body);
    let headers = [
        ("Content-Type", file.content_type),
        (
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
    ];
    for (k, v) in headers {
        if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            r.add_header(h);
        }
    }
    if let Err(e) = req.respond(r) {
        log::debug!("http: the page could not be sent: {e}");
    }
}

fn reply_empty(req: Request, status: u16, cors: Option<&str>) {
    let mut r = Response::empty(status);
    for h in cors_headers(cors) {
        r.add_header(h);
    }
    let _ = req.respond(r);
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
