//! A small HTTP/1.1 server for the simulator: a thread per connection, keep-alive,
//! `Content-Length` bodies. Written for the simulator rather than borrowed so that
//! faults (a late answer, a connection dropped after the request was processed) are
//! exact, and so that no connection ever waits for another one's thread. With a
//! certificate it serves HTTPS (rustls), as the real gateways do.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 128 * 1024 * 1024;

pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What to do with a request.
pub enum Reply {
    Answer {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// Bytes (a zip stream); with `cut_after`, the connection drops after that many
    /// bytes of the body, as a line that fails mid-download.
    Binary {
        status: u16,
        content_type: &'static str,
        body: Arc<Vec<u8>>,
        cut_after: Option<usize>,
    },
    /// Close the connection without answering.
    Drop,
}

pub type Handler = Arc<dyn Fn(Request) -> Reply + Send + Sync>;

/// Switches shared by the acceptor, every connection and the fault controls.
#[derive(Default)]
pub struct Control {
    stop: AtomicBool,
    /// Until this Unix time (ms) the port is closed: connections are refused.
    refuse_until_ms: AtomicI64,
    /// Bumped to make every open connection close.
    generation: AtomicU64,
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A TLS server setup from a PEM certificate chain and its PEM private key.
pub fn tls_config(cert_chain_pem: &[u8], key_pem: &[u8]) -> std::io::Result<Arc<rustls::ServerConfig>> {
    let bad = |what: &str, e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {e}"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad("certificate PEM", e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("certificate PEM", "no certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad("key PEM", e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS versions", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("certificate and key", e.to_string()))?;
    Ok(Arc::new(cfg))
}

pub struct Server {
    addr: SocketAddr,
    control: Arc<Control>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(
        listener: TcpListener,
        control: Arc<Control>,
        handler: Handler,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let c = control.clone();
        let acceptor = std::thread::Builder::new()
            .name("mi-sim-accept".into())
            .spawn(move || accept(listener, addr, &c, handler, tls))?;
        Ok(Server { addr, control, acceptor: Some(acceptor) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(&mut self) {
        self.control.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

impl Control {
    /// Closes the port and every open connection for `d`: connections are refused
    /// (RST), as when the gateway or the network is down.
    pub fn refuse_for(&self, addr: SocketAddr, d: Duration) {
        let until = unix_ms().saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.refuse_until_ms.store(until, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
        // Give the acceptor and the connections (which poll every 50 ms) time to close.
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Opens the port again at once (ends a refusal early).
    pub fn accept_again(&self) {
        self.refuse_until_ms.store(0, Ordering::Release);
    }
}

fn accept(
    first: TcpListener,
    addr: SocketAddr,
    control: &Arc<Control>,
    handler: Handler,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let mut listener = Some(first);
    loop {
        let Some(l) = listener.take() else { return };
        for conn in l.incoming() {
            if control.stop.load(Ordering::Acquire) {
                return;
            }
            if control.refuse_until_ms.load(Ordering::Acquire) > unix_ms() {
                break;
            }
            let Ok(conn) = conn else { continue };
            let (h, c, tls) = (handler.clone(), control.clone(), tls.clone());
            let _ = std::thread::Builder::new().name("mi-sim-conn".into()).spawn(move || connection(conn, h, c, tls));
        }
        drop(l);
        while control.refuse_until_ms.load(Ordering::Acquire) > unix_ms() && !control.stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(10));
        }
        for _ in 0..200 {
            if let Ok(l) = TcpListener::bind(addr) {
                // Stopped while the port was closed: the wake-up connection was
                // refused, so this listener would wait for one that never comes.
                // (A stop from now on reaches the listener.)
                if control.stop.load(Ordering::Acquire) {
                    return;
                }
                listener = Some(l);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// One connection, plain or TLS (the handshake happens on the first read).
fn connection(conn: TcpStream, handler: Handler, control: Arc<Control>, tls: Option<Arc<rustls::ServerConfig>>) {
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
    // Kept to drop the connection at the TCP level (a fault), whatever runs over it.
    let Ok(socket) = conn.try_clone() else {
        return;
    };
    match tls {
        None => serve(conn, &socket, handler, control),
        Some(cfg) => {
            let Ok(session) = rustls::ServerConnection::new(cfg) else {
                return;
            };
            serve(rustls::StreamOwned::new(session, conn), &socket, handler, control)
        }
    }
}

fn serve<S: Read + Write>(stream: S, socket: &TcpStream, handler: Handler, control: Arc<Control>) {
    let generation = control.generation.load(Ordering::Acquire);
    let stop = Closing { control: &control, generation };
    let mut reader = BufReader::new(stream);
    loop {
        let rq = match read_request(&mut reader, &stop) {
            Ok(Some(rq)) => rq,
            Ok(None) => return,
            Err(status) => {
                let _ = write_answer(reader.get_mut(), status, "text/plain", b"bad request", 11, false);
                return;
            }
        };
        let close =
            rq.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
        match handler(rq) {
            Reply::Answer { status, content_type, body } => {
                if write_answer(reader.get_mut(), status, content_type, body.as_bytes(), body.len(), !close).is_err()
                    || close
                {
                    return;
                }
            }
            Reply::Binary { status, content_type, body, cut_after } => {
                let sent = &body[..cut_after.unwrap_or(body.len()).min(body.len())];
                if write_answer(reader.get_mut(), status, content_type, sent, body.len(), !close).is_err() || close {
                    return;
                }
                if sent.len() < body.len() {
                    let _ = socket.shutdown(std::net::Shutdown::Both);
                    return;
                }
            }
            Reply::Drop => {
                let _ = socket.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    }
}

/// Reads one request; `Ok(None)` when the peer closed or the server stops.
/// Whether a connection must close: the server stops or its generation passed.
struct Closing<'a> {
    control: &'a Control,
    generation: u64,
}

impl Closing<'_> {
    fn now(&self) -> bool {
        self.control.stop.load(Ordering::Acquire) || self.control.generation.load(Ordering::Acquire) != self.generation
    }
}

fn read_request<S: Read>(r: &mut BufReader<S>, stop: &Closing<'_>) -> Result<Option<Request>, u16> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        match r.read_until(b'\n', &mut head) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) if idle(&e, stop) => continue,
            Err(_) => return Ok(None),
        }
        if head.len() > MAX_HEAD {
            return Err(431);
        }
        // Blank lines before a request are allowed (RFC 9112 §2.2).
        if head.len() - before <= 2 && head[before..].iter().all(|b| *b == b'\r' || *b == b'\n') {
            if before == 0 {
                head.clear();
                continue;
            }
            break;
        }
    }
    let text = std::str::from_utf8(&head).map_err(|_| 400u16)?;
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let mut first = lines.next().ok_or(400u16)?.split(' ');
    let (method, path) = (first.next().ok_or(400u16)?.to_string(), first.next().ok_or(400u16)?.to_string());
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))).collect();
    let get = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str());
    if get("transfer-encoding").is_some() {
        return Err(411);
    }
    let len: usize = get("content-length").map(|v| v.parse().map_err(|_| 400u16)).transpose()?.unwrap_or(0);
    if len > MAX_BODY {
        return Err(413);
    }
    let mut body = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match r.read(&mut body[got..]) {
            Ok(0) => return Ok(None),
            Ok(n) => got += n,
            Err(e) if idle(&e, stop) => {}
            Err(_) => return Ok(None),
        }
    }
    Ok(Some(Request { method, path, headers, body }))
}

/// Whether a read error is only the poll timeout while the server keeps running:
/// then the connection waits on; anything else ends it.
fn idle(e: &std::io::Error, stop: &Closing<'_>) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) && !stop.now()
}

/// Writes an answer whose body is `length` bytes long, of which `body` is sent
/// (all of it, unless a fault cuts it short).
fn write_answer(
    w: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &[u8],
    length: usize,
    keep_alive: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nDate: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT"),
        length,
        if keep_alive { "keep-alive" } else { "close" }
    );
    let mut all = head.into_bytes();
    all.extend_from_slice(body);
    w.write_all(&all)?;
    w.flush()
}
