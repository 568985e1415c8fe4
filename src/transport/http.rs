//! The HTTP exchange with the gateway (ureq, keep-alive) and the classification of
//! failures into "never left this machine" and "may have been processed".

use crate::clock::Clock;
use crate::config::Gateway;
use crate::error::Error;
use crate::transport::{gateway, Failure, Reply};
use std::io::ErrorKind;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The largest response body accepted (catalogue queries can be large).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

pub struct Transport {
    agent: ureq::Agent,
    gateway: Gateway,
    /// The signatures' timestamps.
    clock: Clock,
    /// Set by [`Transport::interrupt`].
    interrupted: AtomicBool,
}

/// What a plain GET of the gateway's URL found (`mi-sdk check`).
#[derive(Debug, Clone)]
pub struct Probe {
    pub status: u16,
    /// The gateway's `Date` header, to compare clocks with.
    pub date: Option<String>,
}

impl Transport {
    /// A transport for the gateway; `ca` is the PEM file of the CAs to trust instead
    /// of the Mozilla roots (`gateway.ca_file`).
    pub fn new(g: &Gateway, ca: Option<&Path>, clock: Clock) -> crate::error::Result<Transport> {
        let mut tls = ureq::tls::TlsConfig::builder().disable_verification(!g.tls_verify);
        if let Some(path) = ca {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&ca_certs(path)?));
        }
        if !g.tls_verify && g.url.starts_with("https:") {
            log::warn!("gateway.tls_verify is false: the gateway's certificate is not checked (test setups only)");
        }
        let tls = tls.build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_millis(g.connect_timeout_ms)))
            .timeout_global(Some(Duration::from_millis(g.timeout_ms)))
            .max_idle_connections_per_host(64)
            .tls_config(tls)
            .user_agent(concat!("mi_sdk/", env!("CARGO_PKG_VERSION")))
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            MarkConnectFailures(ureq::unversioned::transport::DefaultConnector::new()),
            super::resolve::CachingResolver::new(clock.clone()),
        );
        Ok(Transport { agent, gateway: g.clone(), clock, interrupted: AtomicBool::new(false) })
    }

    /// Breaks off every exchange in flight: a send blocked on the gateway fails at
    /// once (as an answer that broke off: it may have been processed) instead of
    /// waiting out its timeout, and later sends fail as never sent. For shutdown's
    /// deadline. A TCP connect in progress is not interrupted: it is bounded by
    /// `connect_timeout_ms`.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::Release);
        self.agent.clone().shutdown();
    }

    /// The URL for a transaction, by the gateway's URL style; `Err` when the
    /// per-transaction map has none for it.
    pub fn url(&self, infno: &str) -> Result<String, String> {
        self.gateway.url_for(infno)
    }

    /// POSTs an envelope to the gateway (signed per its profile) and reads the answer.
    pub fn post(&self, infno: &str, body: &str) -> Result<Reply, Failure> {
        let url = self.url(infno).map_err(Failure::NeverSent)?;
        self.post_to(&url, &self.headers(&url), body)
    }

    /// The signed headers of the gateway's profile for a request to `url` sent now
    /// (a csb gateway checks the URL's query parameters too).
    pub fn headers(&self, url: &str) -> Vec<(&'static str, String)> {
        gateway::headers(&self.gateway, url, self.clock.unix_ms())
    }

    /// A plain GET of the gateway's URL with this transport's TLS settings, to see
    /// whether it answers at all, and what time it thinks it is.
    pub fn probe(&self, timeout: Duration) -> Result<Probe, Failure> {
        let resp = self.agent.get(&self.gateway.url).config().timeout_global(Some(timeout)).build().call();
        let resp = resp.map_err(classify)?;
        let date = resp.headers().get("date").and_then(|d| d.to_str().ok()).map(str::to_owned);
        Ok(Probe { status: resp.status().as_u16(), date })
    }

    /// POSTs JSON to a URL with extra headers and reads the whole answer.
    pub fn post_to(&self, url: &str, headers: &[(&'static str, String)], body: &str) -> Result<Reply, Failure> {
        self.post_with_timeout(url, headers, body, Duration::from_millis(self.gateway.timeout_ms))
    }

    /// `post_to` with its own time limit (file transfers take longer than calls).
    pub fn post_with_timeout(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: &str,
        timeout: Duration,
    ) -> Result<Reply, Failure> {
        let resp = self.send(url, headers, body, timeout)?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| Failure::MaybeProcessed(format!("reading the answer failed: {}", describe(&e))))?;
        Ok(Reply { status, body: String::from_utf8_lossy(&body).into_owned() })
    }

    /// POSTs JSON and writes the answer's body to `path` as it arrives, refusing
    /// more than `limit` bytes. A body that breaks off is a failure after the
    /// request was processed.
    pub fn post_to_file(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: &str,
        timeout: Duration,
        path: &Path,
        limit: u64,
    ) -> Result<Streamed, Failure> {
        let resp = self.send(url, headers, body, timeout)?;
        let status = resp.status().as_u16();
        let mut reader = resp.into_body().into_reader();
        let mut file = std::fs::File::create(path)
            .map_err(|e| Failure::MaybeProcessed(format!("cannot write the download to {}: {e}", path.display())))?;
        let mut buf = vec![0u8; 64 * 1024];
        let (mut bytes, mut head) = (0u64, Vec::new());
        loop {
            let n = match std::io::Read::read(&mut reader, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    return Err(Failure::MaybeProcessed(format!("the download broke off after {bytes} bytes: {e}")))
                }
            };
            bytes += n as u64;
            if bytes > limit {
                return Err(Failure::MaybeProcessed(format!(
                    "the download is larger than files.max_download_mb ({} MB); stopped",
                    limit >> 20
                )));
            }
            if head.len() < 4 {
                head.extend_from_slice(&buf[..n.min(4 - head.len())]);
            }
            std::io::Write::write_all(&mut file, &buf[..n]).map_err(|e| {
                Failure::MaybeProcessed(format!("cannot write the download to {}: {e}", path.display()))
            })?;
        }
        Ok(Streamed { status, bytes, is_zip: head == b"PK\x03\x04" })
    }

    fn send(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: &str,
        timeout: Duration,
    ) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let mut req = self
            .agent
            .post(url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Content-Type", "application/json;charset=utf-8");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.send(body).map_err(|e| match e {
            // A send begun after `interrupt`: ureq refuses it before any connection
            // is used, so it never left.
            ureq::Error::Io(io)
                if io.kind() == ErrorKind::NotConnected
                    && self.interrupted.load(Ordering::Acquire)
                    && io.to_string().contains("shut down") =>
            {
                Failure::NeverSent("not sent: the SDK is shutting down".into())
            }
            e => classify(e),
        })
    }
}

/// A body written to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streamed {
    pub status: u16,
    pub bytes: u64,
    /// Whether it starts as a zip does (`PK\x03\x04`).
    pub is_zip: bool,
}

/// The connector chain of [`ureq::unversioned::transport::DefaultConnector`] (TCP
/// connect, proxy, TLS handshake), with its I/O errors marked as [`ConnectFailed`]:
/// ureq reports an EHOSTUNREACH from `connect` and one from writing on a kept-alive
/// connection alike, and only the first proves that nothing of the request left.
#[derive(Debug)]
struct MarkConnectFailures(ureq::unversioned::transport::DefaultConnector);

impl ureq::unversioned::transport::Connector for MarkConnectFailures {
    type Out = Box<dyn ureq::unversioned::transport::Transport>;

    fn connect(
        &self,
        details: &ureq::unversioned::transport::ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        self.0.connect(details, chained).map_err(|e| match e {
            ureq::Error::Io(io) => ureq::Error::Io(connect_failed(io)),
            other => other,
        })
    }
}

/// An I/O error met while opening a connection, before any byte of the request.
#[derive(Debug)]
struct ConnectFailed(std::io::Error);

impl std::fmt::Display for ConnectFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ConnectFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// `e`, same kind and message, marked as met while connecting.
fn connect_failed(e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), ConnectFailed(e))
}

/// Whether an I/O error came from opening a connection ([`MarkConnectFailures`]).
fn while_connecting(io: &std::io::Error) -> bool {
    io.get_ref().is_some_and(|inner| inner.is::<ConnectFailed>())
}

/// Sorts a ureq error by whether the request may have reached the platform. Only
/// failures before a connection existed count as "never sent": after that, a reset,
/// a lost route (host or network unreachable on a kept-alive connection) or a
/// timeout can come after the platform acted.
pub fn classify(e: ureq::Error) -> Failure {
    use ureq::Error as E;
    use ureq::Timeout as T;
    let msg = describe(&e);
    let never = match &e {
        E::HostNotFound | E::ConnectionFailed | E::BadUri(_) | E::Tls(_) | E::InvalidProxyUrl => true,
        E::Timeout(T::Connect | T::Resolve) => true,
        // The request is written only once the connector has returned a connection.
        E::Io(io) if while_connecting(io) => true,
        E::Io(io) => {
            // Kinds only `connect` gives, whatever the connector chain reports them through.
            matches!(io.kind(), ErrorKind::ConnectionRefused | ErrorKind::AddrNotAvailable | ErrorKind::NotFound)
                || tls_error(io).is_some_and(refused_in_handshake)
        }
        E::Rustls(r) => refused_in_handshake(r),
        _ => false,
    };
    if never {
        Failure::NeverSent(msg)
    } else {
        Failure::MaybeProcessed(msg)
    }
}

/// The certificates of a PEM file; a file without one is a config error.
fn ca_certs(path: &Path) -> crate::error::Result<Vec<ureq::tls::Certificate<'static>>> {
    let bad = |why: String| Error::config(format!("config key `gateway.ca_file`: {} {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item.map_err(|e| bad(format!("is not valid PEM: {e}")))? {
            ureq::tls::PemItem::Certificate(c) => certs.push(c),
            _ => return Err(bad("holds a private key; it must hold only the CA certificates".into())),
        }
    }
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
    }
    Ok(certs)
}

/// The TLS error inside an I/O error (rustls reports through the stream).
fn tls_error(io: &std::io::Error) -> Option<&rustls::Error> {
    let inner = io.get_ref()?;
    match inner.downcast_ref::<ConnectFailed>() {
        Some(ConnectFailed(io)) => tls_error(io),
        None => inner.downcast_ref::<rustls::Error>(),
    }
}

/// Errors that only a handshake gives, before any request byte is sent: the
/// client sends no application data until the server's certificate is accepted.
fn refused_in_handshake(e: &rustls::Error) -> bool {
    use rustls::Error as R;
    matches!(e, R::InvalidCertificate(_) | R::NoCertificatesPresented | R::UnsupportedNameType | R::PeerIncompatible(_))
}

fn describe(e: &ureq::Error) -> String {
    let tls = match e {
        ureq::Error::Io(io) => tls_error(io),
        ureq::Error::Rustls(r) => Some(r),
        _ => None,
    };
    if let Some(t @ rustls::Error::InvalidCertificate(_)) = tls {
        return format!(
            "the gateway's TLS certificate was refused ({t}); if the gateway uses its own CA, name it in \
             gateway.ca_file"
        );
    }
    match e {
        ureq::Error::Timeout(t) => format!("timed out ({t:?})"),
        ureq::Error::HostNotFound => "gateway host not found (DNS)".into(),
        ureq::Error::Io(io) => format!("{} ({:?})", io, io.kind()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connection_never_left() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let g = Gateway {
            url: format!("http://127.0.0.1:{port}/x"),
            connect_timeout_ms: 500,
            timeout_ms: 1000,
            ..Gateway::default()
        };
        let t = Transport::new(&g, None, Clock::system()).unwrap();
        assert!(matches!(t.post("1101", "{}"), Err(Failure::NeverSent(_))));
    }

    #[test]
    fn silence_after_sending_may_have_been_processed() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            std::thread::sleep(Duration::from_millis(600));
            drop(s);
        });
        let g = Gateway {
            url: format!("http://127.0.0.1:{port}/x"),
            connect_timeout_ms: 500,
            timeout_ms: 300,
            ..Gateway::default()
        };
        assert!(matches!(
            Transport::new(&g, None, Clock::system()).unwrap().post("2207", "{}"),
            Err(Failure::MaybeProcessed(_))
        ));
        h.join().unwrap();
    }

    /// EHOSTUNREACH / ENETUNREACH while connecting: nothing left. The same on a
    /// kept-alive connection (a write or read of a request under way): part or all of
    /// it may have reached the gateway, so it is a reset. (A real socket that loses its
    /// route mid-request needs a router to drop it; the kinds are built here.)
    #[test]
    fn unreachable_is_never_sent_only_while_connecting() {
        use std::io::{Error as IoError, ErrorKind as K};
        for kind in [K::HostUnreachable, K::NetworkUnreachable] {
            let on_open_connection = ureq::Error::Io(IoError::from(kind));
            assert!(
                matches!(classify(on_open_connection), Failure::MaybeProcessed(_)),
                "{kind:?} on a reused connection"
            );
            let connecting = ureq::Error::Io(connect_failed(IoError::from(kind)));
            assert!(matches!(classify(connecting), Failure::NeverSent(_)), "{kind:?} while connecting");
        }
        // A reset is a reset wherever it comes from; refused can only come from connect.
        let reset = ureq::Error::Io(IoError::from(K::ConnectionReset));
        assert!(matches!(classify(reset), Failure::MaybeProcessed(_)));
        assert!(matches!(classify(ureq::Error::Io(IoError::from(K::ConnectionRefused))), Failure::NeverSent(_)));
    }

    /// A real failed connect passes through the connector that marks it, and keeps its
    /// kind and its message.
    #[test]
    fn a_real_connect_failure_is_marked_as_one() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let g = Gateway { url: format!("http://127.0.0.1:{port}/x"), connect_timeout_ms: 500, ..Gateway::default() };
        let t = Transport::new(&g, None, Clock::system()).unwrap();
        let e = t.agent.post(&g.url).send("{}").unwrap_err();
        let ureq::Error::Io(io) = &e else { panic!("{e:?}") };
        assert!(while_connecting(io) && io.kind() == ErrorKind::ConnectionRefused, "{io:?}");
        assert!(describe(&e).contains("ConnectionRefused"), "{}", describe(&e));
    }

    #[test]
    fn append_infno() {
        let g = Gateway { url: "http://h/x/".into(), append_infno: true, ..Gateway::default() };
        assert_eq!(Transport::new(&g, None, Clock::system()).unwrap().url("1101").unwrap(), "http://h/x/1101");
    }
}
