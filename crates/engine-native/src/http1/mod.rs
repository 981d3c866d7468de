//! The measuring path's own HTTP/1.1 client, for plain-HTTP targets.
//!
//! It exists so that every read of a response is the client's own `recvmsg`, stamped with the
//! kernel's receive time ([`crate::receive_time`]): reqwest's connection type is sealed, so
//! its reads cannot be reached. It speaks just what a benchmark needs: one `POST` at a time
//! per connection (no pipelining), a response framed by `Content-Length`, chunked encoding or
//! the connection's close, and keep-alive connections in a pool. The request is written in
//! one call, so the moment that call returns is when the server can see all of it.

mod chunked;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::receive_time::{Stamp, StampedReader};
use chunked::Chunked;

/// The most a response head may take.
const MAX_HEAD_BYTES: usize = 64 << 10;
/// Headers parsed from a response head.
const MAX_HEADERS: usize = 64;
/// Size of each read.
const READ_BYTES: usize = 16 << 10;

/// Why an exchange on a connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("cannot connect to {address}: {source}")]
    Connect { address: String, source: io::Error },
    #[error("no connection to {address} within {seconds} s")]
    ConnectTimeout { address: String, seconds: f64 },
    #[error("cannot send the request: {0}")]
    Send(io::Error),
    #[error("the connection closed before a response came")]
    ClosedBeforeResponse,
    #[error("the connection closed in the middle of the response")]
    ClosedInBody,
    #[error("nothing received for {0} s (target.timeouts.read_seconds)")]
    ReadTimeout(f64),
    #[error("cannot read the response: {0}")]
    Read(io::Error),
    #[error("invalid response head: {0}")]
    Head(String),
    #[error(transparent)]
    Chunked(#[from] chunked::ChunkedError),
}

impl WireError {
    /// The I/O error underneath, for the file-descriptor check.
    pub(crate) fn io(&self) -> Option<&io::Error> {
        match self {
            Self::Connect { source, .. } => Some(source),
            Self::Send(error) | Self::Read(error) => Some(error),
            _ => None,
        }
    }
}

/// Where requests go and what they carry besides their body.
#[derive(Debug)]
pub(crate) struct Client {
    addresses: Vec<SocketAddr>,
    /// `host:port` as the URL wrote it, for messages.
    authority: String,
    /// The request line and the constant headers, up to the per-request ones.
    head: Vec<u8>,
    connect_timeout: Duration,
    read_timeout: Duration,
    /// Whether a connection read to its end is kept for the next request.
    reuse: Arc<crate::connection::Reuse>,
    idle: Mutex<Vec<Connection>>,
    /// Every connection opened, with its set-up time.
    opened: Arc<crate::setup::Opened>,
    /// See [`StampedReader::busy_before_read`].
    pub(crate) busy_before_read: Option<Duration>,
    _stamping: crate::receive_time::KeepStamping,
}

/// The settings of a [`Client`].
#[derive(Debug)]
pub(crate) struct Settings<'a> {
    pub(crate) url: &'a str,
    pub(crate) headers: &'a http::HeaderMap,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) reuse: Arc<crate::connection::Reuse>,
    pub(crate) opened: Arc<crate::setup::Opened>,
}

impl Client {
    /// A client for `settings.url`, which must be `http://`; `None` for any other scheme.
    pub(crate) fn new(settings: Settings<'_>) -> Result<Option<Self>, String> {
        let uri: http::Uri = settings
            .url
            .parse()
            .map_err(|e| format!("invalid target URL `{}`: {e}", settings.url))?;
        if uri.scheme_str() != Some("http") {
            return Ok(None);
        }
        let Some(authority) = uri.authority() else {
            return Err(format!("the target URL `{}` has no host", settings.url));
        };
        let port = authority.port_u16().unwrap_or(80);
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let addresses: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
            .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
            .collect();
        if addresses.is_empty() {
            return Err(format!("`{host}` resolves to no address"));
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\naccept: */*\r\n"
        )
        .into_bytes();
        for (name, value) in settings.headers {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        Ok(Some(Self {
            addresses,
            authority: authority.to_string(),
            head,
            connect_timeout: settings.connect_timeout,
            read_timeout: settings.read_timeout,
            reuse: settings.reuse,
            idle: Mutex::new(Vec::new()),
            opened: settings.opened,
            busy_before_read: None,
            _stamping: crate::receive_time::KeepStamping::start(),
        }))
    }

    /// The whole request: the head with `id` as `x-request-id`, and the body.
    pub(crate) fn request(&self, id: &str, body: &[u8]) -> Vec<u8> {
        let mut request = Vec::with_capacity(self.head.len() + 64 + id.len() + body.len());
        request.extend_from_slice(&self.head);
        request.extend_from_slice(b"x-request-id: ");
        request.extend_from_slice(id.as_bytes());
        request.extend_from_slice(b"\r\ncontent-length: ");
        request.extend_from_slice(body.len().to_string().as_bytes());
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(body);
        request
    }

    /// An idle connection that is still open, or a new one with the time it took to open.
    pub(crate) async fn connection(&self) -> Result<(Connection, Option<Duration>), WireError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match idle {
                Some(connection) if connection.still_open() => return Ok((connection, None)),
                Some(_) => continue,
                None => break,
            }
        }
        let started = Instant::now();
        let connecting = TcpStream::connect(&self.addresses[..]);
        let stream = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(WireError::Connect {
                    address: self.authority.clone(),
                    source,
                })
            }
            Err(_) => {
                return Err(WireError::ConnectTimeout {
                    address: self.authority.clone(),
                    seconds: self.connect_timeout.as_secs_f64(),
                })
            }
        };
        let setup = started.elapsed();
        self.opened.record(setup);
        // Tokens are small writes; Nagle would hold the request's last segment back.
        let _ = stream.set_nodelay(true);
        let stamped = crate::receive_time::enable(&stream);
        let mut reader = StampedReader::default();
        reader.busy_before_read = self.busy_before_read;
        Ok((
            Connection {
                stream,
                reader,
                raw: Buffer::default(),
                stamped,
            },
            Some(setup),
        ))
    }

    /// Returns a connection whose response was read to its end, for the next request.
    pub(crate) fn release(&self, connection: Connection) {
        if self.reuse.now() && connection.raw.is_empty() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(connection);
        }
    }

    /// The longest silence allowed between reads.
    pub(crate) fn read_timeout(&self) -> Duration {
        self.read_timeout
    }
}

/// One open connection to the target.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    reader: StampedReader,
    /// Bytes received and not yet consumed.
    raw: Buffer,
    /// Whether the kernel agreed to stamp its reads.
    stamped: bool,
}

impl Connection {
    /// Whether the peer has not closed an idle connection (nothing to read, no end of stream).
    fn still_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Whether reads on this connection carry the kernel's time.
    pub(crate) fn stamped(&self) -> bool {
        self.stamped
    }

    /// Writes the whole request; when this returns, the kernel has all of it.
    pub(crate) async fn send(&mut self, request: &[u8]) -> Result<(), WireError> {
        self.stream
            .write_all(request)
            .await
            .map_err(WireError::Send)
    }

    /// Reads once more into the buffer; `None` at the end of the stream.
    async fn read_more(&mut self, limit: Duration) -> Result<Option<Stamp>, WireError> {
        // A socket whose data is always ready would never give the thread up (its readiness
        // check is not budgeted): a large body would starve every other task, the server's
        // among them when it shares the runtime. After a read that filled its room, more is
        // waiting: let the others run first.
        if self.raw.filled_up {
            tokio::task::yield_now().await;
        } else {
            tokio::task::consume_budget().await;
        }
        let read =
            tokio::time::timeout(limit, self.reader.read(&self.stream, self.raw.spare())).await;
        let (n, stamp) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(error)) => return Err(WireError::Read(error)),
            Err(_) => return Err(WireError::ReadTimeout(limit.as_secs_f64())),
        };
        self.raw.filled(n);
        Ok((n > 0).then_some(stamp))
    }

    /// Reads the response head (skipping interim `1xx` heads).
    pub(crate) async fn head(&mut self, limit: Duration) -> Result<(Head, Stamp), WireError> {
        let mut last = None;
        loop {
            if let Some(read) = last {
                if let Some((head, length)) = parse_head(self.raw.data())? {
                    self.raw.consume(length);
                    if (100..200).contains(&head.status) && head.status != 101 {
                        continue;
                    }
                    return Ok((head, read));
                }
            }
            if self.raw.len() > MAX_HEAD_BYTES {
                return Err(WireError::Head(format!(
                    "longer than {} KiB",
                    MAX_HEAD_BYTES >> 10
                )));
            }
            match self.read_more(limit).await? {
                Some(read) => last = Some(read),
                None if self.raw.is_empty() => return Err(WireError::ClosedBeforeResponse),
                None => {
                    return Err(WireError::Head(
                        "cut short by the connection's close".into(),
                    ))
                }
            }
        }
    }

    /// The next piece of the body, decoded into `out` (cleared first), with the stamp of the
    /// read that brought it; `None` once the body has ended. `pending` is a read whose bytes
    /// wait in the buffer: at first the head's, whose read may have brought the body's start.
    pub(crate) async fn body(
        &mut self,
        body: &mut Body,
        out: &mut Vec<u8>,
        pending: &mut Option<Stamp>,
    ) -> Result<Option<Stamp>, WireError> {
        out.clear();
        loop {
            if let Some(read) = pending.take() {
                let used = body.take(self.raw.data(), out)?;
                self.raw.consume(used);
                if !out.is_empty() {
                    return Ok(Some(read));
                }
            }
            if body.ended() {
                return Ok(None);
            }
            match self.read_more(body.read_timeout).await? {
                Some(read) => *pending = Some(read),
                None if body.framing == Framing::Close => {
                    body.closed = true;
                    return Ok(None);
                }
                None => return Err(WireError::ClosedInBody),
            }
        }
    }
}

/// Bytes received and not yet consumed, in a buffer that is reused between reads and grows
/// while reads fill it (a large body is read in large pieces, as hyper does).
#[derive(Debug, Default)]
struct Buffer {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
    /// The last read filled all the room it had: more was probably waiting.
    filled_up: bool,
}

/// The largest a read grows to.
const MAX_READ_BYTES: usize = 1 << 20;

impl Buffer {
    fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room for the next read: after the unconsumed bytes, moved to the front first; grown
    /// when the last read filled what there was.
    fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.bytes.len() || (self.filled_up && self.bytes.len() < MAX_READ_BYTES) {
            let grown = (self.bytes.len() * 2)
                .clamp(READ_BYTES, MAX_READ_BYTES)
                .max(self.end + READ_BYTES);
            self.bytes.resize(grown, 0);
        }
        &mut self.bytes[self.end..]
    }

    fn filled(&mut self, n: usize) {
        self.end += n;
        self.filled_up = self.end == self.bytes.len();
    }
}

/// A response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub(crate) version: &'static str,
    pub(crate) content_type: Option<String>,
    pub(crate) retry_after: Option<Duration>,
    framing: Framing,
    keep_alive: bool,
}

impl Head {
    /// The reader of the body that follows this head.
    pub(crate) fn body(&self, read_timeout: Duration) -> Body {
        Body {
            framing: self.framing,
            chunked: Chunked::default(),
            read: 0,
            closed: false,
            keep_alive: self.keep_alive,
            read_timeout,
        }
    }
}

/// How the end of a body is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// Reads one response body.
#[derive(Debug)]
pub(crate) struct Body {
    framing: Framing,
    chunked: Chunked,
    /// Bytes of a `Length` body taken so far.
    read: u64,
    closed: bool,
    keep_alive: bool,
    read_timeout: Duration,
}

impl Body {
    fn ended(&self) -> bool {
        match self.framing {
            Framing::Length(length) => self.read >= length,
            Framing::Chunked => self.chunked.done(),
            Framing::Close => self.closed,
        }
    }

    /// Whether the connection can carry another request once this body has ended.
    pub(crate) fn reusable(&self) -> bool {
        self.keep_alive && self.framing != Framing::Close && self.ended()
    }

    /// Copies the body's bytes from `raw` to `out`; returns how many it took (what follows
    /// the body is left).
    fn take(&mut self, raw: &[u8], out: &mut Vec<u8>) -> Result<usize, WireError> {
        let used = match self.framing {
            Framing::Length(length) => {
                let take = usize::try_from(length - self.read)
                    .unwrap_or(usize::MAX)
                    .min(raw.len());
                out.extend_from_slice(&raw[..take]);
                self.read += take as u64;
                take
            }
            Framing::Chunked => self.chunked.decode(raw, out)?,
            Framing::Close => {
                out.extend_from_slice(raw);
                raw.len()
            }
        };
        Ok(used)
    }
}

/// Parses a head at the start of `raw`, with its length; `None` when it is not complete yet.
fn parse_head(raw: &[u8]) -> Result<Option<(Head, usize)>, WireError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(raw) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(WireError::Head(error.to_string())),
    };
    let status = response.code.unwrap_or_default();
    let http11 = response.version == Some(1);
    let mut content_type = None;
    let mut retry_after = None;
    let mut content_length = None;
    let mut chunked = false;
    let mut connection = None;
    for header in response.headers.iter() {
        let value = String::from_utf8_lossy(header.value);
        let value = value.trim();
        let name = header.name;
        if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse::<u64>()
                    .map_err(|_| WireError::Head(format!("invalid content-length `{value}`")))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            connection = Some(value.to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("retry-after") {
            retry_after = value.parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(length) = content_length {
        Framing::Length(length)
    } else {
        Framing::Close
    };
    let keep_alive = match connection.as_deref() {
        Some(value) if value.split(',').any(|v| v.trim() == "close") => false,
        Some(value) if value.split(',').any(|v| v.trim() == "keep-alive") => true,
        _ => http11,
    };
    Ok(Some((
        Head {
            status,
            version: if http11 { "HTTP/1.1" } else { "HTTP/1.0" },
            content_type,
            retry_after,
            framing,
            keep_alive,
        },
        length,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(text: &[u8]) -> (Head, Vec<u8>) {
        let (head, length) = parse_head(text).unwrap().expect("a complete head");
        (head, text[length..].to_vec())
    }

    #[test]
    fn heads_say_how_their_body_ends_and_whether_the_connection_stays() {
        let (head, rest) = head_of(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n",
        );
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Chunked);
        assert!(head.keep_alive);
        assert_eq!(head.content_type.as_deref(), Some("text/event-stream"));
        assert_eq!(rest, b"5\r\n", "the body's first bytes stay");

        let (head, _) =
            head_of(b"HTTP/1.1 429 Too Many\r\ncontent-length: 2\r\nretry-after: 3\r\nconnection: close\r\n\r\n");
        assert_eq!(head.framing, Framing::Length(2));
        assert!(!head.keep_alive);
        assert_eq!(head.retry_after, Some(Duration::from_secs(3)));

        let (head, _) = head_of(b"HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!(head.framing, Framing::Close);
        assert!(!head.keep_alive);
        assert_eq!(head.version, "HTTP/1.0");

        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-le")
            .unwrap()
            .is_none());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
    }

    #[test]
    fn a_body_leaves_what_follows_it() {
        let (head, raw) = head_of(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabcdef");
        let mut body = head.body(Duration::from_secs(1));
        let mut out = Vec::new();
        assert_eq!(body.take(&raw, &mut out).unwrap(), 3);
        assert_eq!(out, b"abc");
        assert!(body.ended() && body.reusable());
    }

    #[test]
    fn requests_carry_the_target_headers_the_id_and_the_length() {
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", "Bearer k".parse().unwrap());
        let client = Client::new(Settings {
            url: "http://127.0.0.1:9/v1/completions?x=1",
            headers: &headers,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            reuse: Arc::new(crate::connection::Reuse::fixed(true)),
            opened: Arc::default(),
        })
        .unwrap()
        .expect("plain HTTP");
        let request = String::from_utf8(client.request("req-7", b"{}")).unwrap();
        assert_eq!(
            request,
            "POST /v1/completions?x=1 HTTP/1.1\r\nhost: 127.0.0.1:9\r\ncontent-type: application/json\r\naccept: */*\r\nauthorization: Bearer k\r\nx-request-id: req-7\r\ncontent-length: 2\r\n\r\n{}"
        );
        let https = Client::new(Settings {
            url: "https://127.0.0.1:9/v1/completions",
            headers: &headers,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            reuse: Arc::new(crate::connection::Reuse::fixed(true)),
            opened: Arc::default(),
        })
        .unwrap();
        assert!(https.is_none(), "TLS goes another way");
    }
}
