//! HTTP/1.1 on the wire for the local API: connections accepted, request heads
//! parsed by `httparse`, bodies read only up to the configured limit and only while
//! the caller keeps sending, answers written in one piece. It is small because the
//! API is: `Content-Length` bodies (what browsers and HIS clients send), keep-alive,
//! `Expect: 100-continue`. Every limit is enforced at the socket, before anything is
//! buffered: a declared body over the limit is refused unread and the connection
//! closed, and a caller who stops sending is dropped after a deadline, so no caller
//! can make the service allocate what it claims or hold a thread forever.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The largest request head (request line and headers) taken.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// How long a request may take to arrive once it has begun.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may sit idle between requests.
const IDLE: Duration = Duration::from_secs(15);
/// How often a waiting connection looks at the stop flag.
const TICK: Duration = Duration::from_millis(250);
/// What is read and dropped after a refusal, at most.
const LINGER_BYTES: usize = 1 << 20;
/// Connections open at once; one more is answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 128;

/// A request, its body read whole.
pub struct Request {
    pub method: String,
    /// The path with its query (`/v1/requests?state=uncertain`).
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An answer: its status, headers (beyond the length and the connection's) and body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What the wire refuses before the API sees a request: the status, why, and the
/// `Origin` of the request when its head was read (a browser page reads the
/// refusal only if its answer lets that origin in).
pub struct Refused {
    pub status: u16,
    pub why: String,
    pub origin: Option<String>,
}

/// What the API does with each request, and with what the wire refused.
pub trait Handler: Sync {
    fn handle(&self, req: Request) -> Reply;
    fn refused(&self, r: Refused) -> Reply;
}

/// The listening socket, with Nagle's algorithm off: an answer must not wait for
/// the caller's delayed acknowledgement (40 ms). Accepted connections get it too.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
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

/// Accepts and serves connections until `stop` is set; each connection on a thread
/// of its own, at most [`MAX_CONNECTIONS`] at once. Returns once every connection
/// has ended (within a tick of `stop` for idle ones).
pub fn serve(listener: TcpListener, max_body: usize, stop: &AtomicBool, api: &dyn Handler) {
    let open = AtomicUsize::new(0);
    // Where to reach the listener from here: an unspecified address (0.0.0.0)
    // cannot be connected to on Windows; its loopback can.
    let addr = listener.local_addr().ok().map(|mut a| {
        if a.ip().is_unspecified() {
            a.set_ip(match a {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        a
    });
    std::thread::scope(|s| {
        // `accept` blocks: once `stop` is set, a connection to ourselves wakes it.
        s.spawn(|| {
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(TICK);
            }
            if let Some(a) = addr {
                let _ = TcpStream::connect_timeout(&a, Duration::from_secs(1));
            }
        });
        while !stop.load(Ordering::Acquire) {
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin, and go on.
                    log::warn!("http: accept: {e}");
                    std::thread::sleep(TICK);
                    continue;
                }
            };
            if stop.load(Ordering::Acquire) {
                break;
            }
            if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                open.fetch_sub(1, Ordering::AcqRel);
                let why = format!("{MAX_CONNECTIONS} connections are open already: try again");
                let mut c = Conn::new(stream);
                if c.send(&api.refused(Refused { status: 503, why, origin: None }), false, false, stop).is_ok() {
                    // Not the gentle close (it would hold the accept loop): what has
                    // arrived already is read, so that closing does not reset.
                    c.swallow_ready();
                }
                continue;
            }
            let open = &open;
            let started =
                std::thread::Builder::new().name("mi-http".into()).stack_size(1 << 20).spawn_scoped(s, move || {
                    // A bug met by one request must not take the service with it.
                    let run = std::panic::AssertUnwindSafe(|| Conn::new(stream).run(max_body, stop, api));
                    if std::panic::catch_unwind(run).is_err() {
                        log::error!("http: a connection's handler panicked; the connection was closed");
                    }
                    open.fetch_sub(1, Ordering::AcqRel);
                });
            if let Err(e) = started {
                open.fetch_sub(1, Ordering::AcqRel);
                log::warn!("http: no thread for a connection: {e}");
            }
        }
    });
}

/// One connection: bytes read but not yet used (the next request's, with
/// keep-alive) kept between requests.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

enum Next {
    Request(Request, bool),
    Refuse(Refused),
    /// The caller closed, went idle too long, or the service is stopping.
    Done,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(TICK));
        let _ = stream.set_write_timeout(Some(TICK));
        Conn { stream, buf: Vec::new() }
    }

    fn run(mut self, max_body: usize, stop: &AtomicBool, api: &dyn Handler) {
        loop {
            match self.next(max_body, stop) {
                Next::Request(req, keep) => {
                    let head = req.method == "HEAD";
                    let reply = api.handle(req);
                    let keep = keep && !stop.load(Ordering::Acquire);
                    if self.send(&reply, keep, head, stop).is_err() {
                        break;
                    }
                    if !keep {
                        self.linger();
                        break;
                    }
                }
                Next::Refuse(r) => {
                    // What was refused may have left a body unread: the connection
                    // cannot be used again. It is closed gently: a socket closed with
                    // unread bytes resets, and the caller may lose the answer.
                    if self.send(&api.refused(r), false, false, stop).is_ok() {
                        self.linger();
                    }
                    break;
                }
                Next::Done => break,
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Reads what has already arrived, without waiting, and drops it.
    fn swallow_ready(&mut self) {
        if self.stream.set_nonblocking(true).is_ok() {
            let mut chunk = [0u8; 8192];
            let mut left = LINGER_BYTES;
            while let Ok(n) = self.stream.read(&mut chunk) {
                if n == 0 || left <= n {
                    break;
                }
                left -= n;
            }
        }
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// After a refusal: no more to send, and what the caller still sends is read
    /// and dropped, a little and briefly, so that its answer is not lost to a reset.
    fn linger(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
        let (until, mut left) = (Instant::now() + Duration::from_secs(1), LINGER_BYTES);
        let mut chunk = [0u8; 8192];
        while left > 0 && Instant::now() < until {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => left = left.saturating_sub(n),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
    }

    /// Reads until `want` says the buffer holds enough, within `deadline`; false
    /// when the caller closed, the deadline passed, or the service is stopping.
    fn fill(&mut self, deadline: Instant, stop: &AtomicBool, want: impl Fn(&[u8]) -> bool) -> io::Result<bool> {
        let mut chunk = [0u8; 8192];
        while !want(&self.buf) {
            if Instant::now() >= deadline || stop.load(Ordering::Acquire) {
                return Ok(false);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn next(&mut self, max_body: usize, stop: &AtomicBool) -> Next {
        // Idle until the first byte, then the whole head within the deadline; the
        // head ends where the parser says it does.
        match self.fill(Instant::now() + IDLE, stop, |b| !b.is_empty()) {
            Ok(true) => {}
            _ => return Next::Done,
        }
        let deadline = Instant::now() + REQUEST_DEADLINE;
        let (req, end, http11) = loop {
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Request::new(&mut slots);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(end)) => match owned(&parsed) {
                    Ok(req) => break (req, end, parsed.version == Some(1)),
                    Err(why) => return refuse(400, why, None),
                },
                Ok(httparse::Status::Partial) if self.buf.len() >= MAX_HEAD => {
                    return refuse(431, format!("the request's head is larger than {MAX_HEAD} bytes"), None)
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => {
                    return refuse(431, format!("more than {MAX_HEADERS} headers"), None)
                }
                Err(e) => return refuse(400, format!("not an HTTP request: {e}"), None),
            }
            let had = self.buf.len();
            match self.fill(deadline, stop, |b| b.len() > had) {
                Ok(true) => {}
                Ok(false) if !stop.load(Ordering::Acquire) => {
                    return refuse(408, "the request did not arrive in time", None)
                }
                _ => return Next::Done,
            }
        };
        let origin = req.header("Origin").map(str::to_string);
        if req.header("Transfer-Encoding").is_some() {
            return refuse(411, "send the body with a Content-Length, not a Transfer-Encoding", origin);
        }
        // Every Content-Length the same number, in digits only: a request whose
        // length can be read two ways could smuggle another after it.
        let lengths: Vec<&str> = req
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
            .map(|(_, v)| v.as_str())
            .collect();
        let length = match lengths.first() {
            None => 0,
            Some(first) if lengths.iter().all(|l| l == first) && first.bytes().all(|b| b.is_ascii_digit()) => {
                match first.parse::<u64>() {
                    Ok(n) => n,
                    Err(_) => return refuse(413, "the Content-Length is beyond any limit", origin),
                }
            }
            Some(_) => return refuse(400, "the Content-Length is not one number", origin),
        };
        if length > max_body as u64 {
            return refuse(413, format!("the body is larger than http.max_body_kb ({max_body} bytes)"), origin);
        }
        let length = length as usize;
        let connection = req.header("Connection").unwrap_or("").to_ascii_lowercase();
        let keep = if http11 { !connection.contains("close") } else { connection.contains("keep-alive") };
        self.buf.drain(..end);
        let expects = req.header("Expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
        if http11 && expects && length > self.buf.len() {
            let _ = self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        match self.fill(deadline, stop, |b| b.len() >= length) {
            Ok(true) => {}
            Ok(false) if !stop.load(Ordering::Acquire) => {
                return refuse(408, "the body did not arrive in time", origin)
            }
            _ => return Next::Done,
        }
        let rest = self.buf.split_off(length);
        let body = std::mem::replace(&mut self.buf, rest);
        Next::Request(Request { body, ..req }, keep)
    }

    /// Writes an answer in one piece (`head`: its headers only, for HEAD), within
    /// one deadline however slowly the caller reads, and not past `stop`.
    fn send(&mut self, r: &Reply, keep: bool, head: bool, stop: &AtomicBool) -> io::Result<()> {
        let mut out = Vec::with_capacity(256 + r.body.len());
        let _ = write!(out, "HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
        for (k, v) in &r.headers {
            let _ = write!(out, "{k}: {v}\r\n");
        }
        if r.status != 204 {
            let _ = write!(out, "Content-Length: {}\r\n", r.body.len());
        }
        let _ = write!(out, "Connection: {}\r\n\r\n", if keep { "keep-alive" } else { "close" });
        if !head && r.status != 204 {
            out.extend_from_slice(&r.body);
        }
        let _ = self.stream.set_write_timeout(Some(TICK));
        let deadline = Instant::now() + REQUEST_DEADLINE;
        let mut sent = 0;
        while sent < out.len() {
            if Instant::now() >= deadline || (sent > 0 && stop.load(Ordering::Acquire)) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the caller did not read the answer in time"));
            }
            match self.stream.write(&out[sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The head's parts, owned: the method, the path and the headers as text.
fn owned(parsed: &httparse::Request<'_, '_>) -> std::result::Result<Request, String> {
    let mut headers = Vec::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let v = std::str::from_utf8(h.value).map_err(|_| format!("the header {} is not UTF-8 text", h.name))?;
        headers.push((h.name.to_string(), v.trim().to_string()));
    }
    Ok(Request {
        method: parsed.method.unwrap_or("").to_string(),
        url: parsed.path.unwrap_or("/").to_string(),
        headers,
        body: Vec::new(),
    })
}

fn refuse(status: u16, why: impl Into<String>, origin: Option<String>) -> Next {
    Next::Refuse(Refused { status, why: why.into(), origin })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}
