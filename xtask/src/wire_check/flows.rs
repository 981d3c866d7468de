//! HTTP/1.1 exchanges from the TCP segments of a capture: for each request, when its last byte
//! went on the wire, and when the first SSE event with content of its response did.
//!
//! Each direction of a connection is put in sequence order (a segment beyond a gap waits for
//! it, a retransmitted byte counts once, at its first sight) and parsed as it goes, so a capture
//! of any size needs memory only for the exchanges. Requests on one connection are sequential
//! (no pipelining), so the n-th response answers the n-th request.

use std::collections::{BTreeMap, HashMap};

use super::pcap::{Endpoint, Segment, TCP_SYN};

/// One request as the wire saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireExchange {
    /// Its `x-request-id`.
    pub(crate) id: Option<String>,
    /// The packet that carried the request's last byte.
    pub(crate) request_ns: i64,
    /// The client's SYN of the connection, when this request was its first.
    pub(crate) new_connection_syn_ns: Option<i64>,
    /// The response's status, when its head came.
    pub(crate) status: Option<u16>,
    /// The packet that completed the response's first SSE event with non-empty content.
    pub(crate) first_content_ns: Option<i64>,
}

/// What the tracker could not follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Anomalies {
    pub(crate) connections: u64,
    /// Connections whose SYN was not captured: their bytes are not read.
    pub(crate) without_syn: u64,
    /// Segments that came before a gap in the sequence was filled.
    pub(crate) out_of_order: u64,
    /// Bytes a direction still waited for at the end (lost from the capture).
    pub(crate) directions_with_gaps: u64,
    /// Directions whose bytes stopped parsing as HTTP/1.1.
    pub(crate) unparsable: u64,
}

/// Follows every connection to `server_port`.
#[derive(Debug)]
pub(crate) struct Tracker {
    server_port: u16,
    connections: HashMap<Endpoint, Connection>,
    done: Vec<WireExchange>,
    anomalies: Anomalies,
}

impl Tracker {
    pub(crate) fn new(server_port: u16) -> Self {
        Self {
            server_port,
            connections: HashMap::new(),
            done: Vec::new(),
            anomalies: Anomalies::default(),
        }
    }

    pub(crate) fn segment(&mut self, ts_ns: i64, s: &Segment<'_>) {
        let (client, upstream) = if s.dst.port == self.server_port {
            (s.src, true)
        } else if s.src.port == self.server_port {
            (s.dst, false)
        } else {
            return;
        };
        let syn = s.flags & TCP_SYN != 0;
        if upstream && syn {
            // A retransmitted SYN changes nothing; a new one on this client port starts a new
            // connection, and the old one is over.
            if self.connections.get(&client).map(|c| c.syn_seq) != Some(s.seq) {
                if let Some(old) = self
                    .connections
                    .insert(client, Connection::new(ts_ns, s.seq))
                {
                    self.close(old);
                }
                self.anomalies.connections += 1;
            }
            return;
        }
        let Some(c) = self.connections.get_mut(&client) else {
            self.anomalies.without_syn += 1;
            // Remembered, so that its other segments are neither read nor counted again.
            let mut ignored = Connection::new(ts_ns, s.seq);
            ignored.followed = false;
            ignored.up.broken = true;
            ignored.down.broken = true;
            self.connections.insert(client, ignored);
            return;
        };
        if upstream {
            let parser = &mut c.requests;
            c.up.push(
                ts_ns,
                s.seq,
                false,
                s.payload,
                &mut self.anomalies,
                |ts, b| parser.feed(ts, b),
            );
        } else {
            let parser = &mut c.responses;
            c.down.push(
                ts_ns,
                s.seq,
                syn,
                s.payload,
                &mut self.anomalies,
                |ts, b| parser.feed(ts, b),
            );
        }
    }

    /// The exchanges of every connection, in no particular order.
    pub(crate) fn finish(mut self) -> (Vec<WireExchange>, Anomalies) {
        let open: Vec<Connection> = self.connections.drain().map(|(_, c)| c).collect();
        for c in open {
            self.close(c);
        }
        (self.done, self.anomalies)
    }

    fn close(&mut self, c: Connection) {
        if !c.followed {
            return;
        }
        for d in [&c.up, &c.down] {
            self.anomalies.directions_with_gaps += u64::from(!d.pending.is_empty());
        }
        self.anomalies.unparsable += u64::from(c.requests.broken) + u64::from(c.responses.broken);
        let mut responses = c.responses.done.into_iter();
        for (n, request) in c.requests.done.into_iter().enumerate() {
            let response = responses.next();
            self.done.push(WireExchange {
                id: request.id,
                request_ns: request.last_byte_ns,
                new_connection_syn_ns: (n == 0).then_some(c.syn_ns),
                status: response.as_ref().map(|r| r.status),
                first_content_ns: response.and_then(|r| r.first_content_ns),
            });
        }
    }
}

#[derive(Debug)]
struct Connection {
    syn_ns: i64,
    syn_seq: u32,
    /// False for a connection whose SYN was not seen.
    followed: bool,
    up: Direction,
    down: Direction,
    requests: Requests,
    responses: Responses,
}

impl Connection {
    fn new(syn_ns: i64, syn_seq: u32) -> Self {
        let up = Direction {
            // The SYN takes one sequence number.
            base: Some(syn_seq.wrapping_add(1)),
            ..Direction::default()
        };
        Self {
            syn_ns,
            syn_seq,
            followed: true,
            up,
            down: Direction::default(),
            requests: Requests::default(),
            responses: Responses::default(),
        }
    }
}

/// One direction's bytes, put in sequence order.
#[derive(Debug, Default)]
struct Direction {
    /// The sequence number of the first data byte.
    base: Option<u32>,
    /// The next byte expected, relative to `base`.
    next: u32,
    /// Segments beyond a gap, by relative offset.
    pending: BTreeMap<u32, Vec<u8>>,
    broken: bool,
}

impl Direction {
    /// Takes one segment and hands every byte that is now in order to `deliver`, once, with
    /// the time of this packet: bytes beyond a gap count from when the gap is filled, as the
    /// receiver's kernel can hand them on only then.
    fn push(
        &mut self,
        ts_ns: i64,
        seq: u32,
        syn: bool,
        payload: &[u8],
        anomalies: &mut Anomalies,
        mut deliver: impl FnMut(i64, &[u8]),
    ) {
        if syn {
            self.base.get_or_insert(seq.wrapping_add(1));
            return;
        }
        let Some(base) = self.base else {
            return;
        };
        if self.broken || payload.is_empty() {
            return;
        }
        let offset = seq.wrapping_sub(base);
        let ahead = offset.wrapping_sub(self.next) as i32;
        if ahead > 0 {
            anomalies.out_of_order += 1;
            self.pending
                .entry(offset)
                .or_insert_with(|| payload.to_vec());
            return;
        }
        self.take(ts_ns, ahead, payload, &mut deliver);
        while let Some((&offset, _)) = self.pending.first_key_value() {
            let ahead = offset.wrapping_sub(self.next) as i32;
            if ahead > 0 {
                break;
            }
            let bytes = self.pending.remove(&offset).expect("the first key");
            self.take(ts_ns, ahead, &bytes, &mut deliver);
        }
    }

    /// Delivers the part of a segment starting `ahead` (≤ 0) bytes from `next` not seen yet.
    fn take(
        &mut self,
        ts_ns: i64,
        ahead: i32,
        payload: &[u8],
        deliver: &mut impl FnMut(i64, &[u8]),
    ) {
        let seen = ahead.unsigned_abs() as usize;
        if let Some(new) = payload.get(seen..).filter(|b| !b.is_empty()) {
            self.next = self.next.wrapping_add(new.len() as u32);
            deliver(ts_ns, new);
        }
    }
}

/// The longest head accepted; anything longer is not HTTP as the client and the mock speak it.
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug)]
struct Request {
    id: Option<String>,
    last_byte_ns: i64,
}

/// Requests (head, then a `content-length` body) one after another.
#[derive(Debug, Default)]
struct Requests {
    head: Vec<u8>,
    /// The request being read once its head is complete: its id and the body left.
    body: Option<(Option<String>, usize)>,
    done: Vec<Request>,
    broken: bool,
}

impl Requests {
    fn feed(&mut self, ts_ns: i64, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.broken {
            if let Some((id, left)) = &mut self.body {
                let n = (*left).min(bytes.len());
                *left -= n;
                bytes = &bytes[n..];
                if *left == 0 {
                    let id = id.take();
                    self.body = None;
                    self.done.push(Request {
                        id,
                        last_byte_ns: ts_ns,
                    });
                }
                continue;
            }
            let Some((head, rest)) = take_head(&mut self.head, bytes) else {
                self.broken = self.head.len() > MAX_HEAD;
                return;
            };
            bytes = rest;
            let chunked = header(&head, "transfer-encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
            let Some(length) = header(&head, "content-length").map_or(Some(0), |v| v.parse().ok())
            else {
                self.broken = true;
                return;
            };
            if chunked || !head.starts_with(|c: char| c.is_ascii_uppercase()) {
                // The client sends bodies of known length; anything else is not followed.
                self.broken = true;
                return;
            }
            let id = header(&head, "x-request-id").map(str::to_owned);
            if length == 0 {
                self.done.push(Request {
                    id,
                    last_byte_ns: ts_ns,
                });
            } else {
                self.body = Some((id, length));
            }
        }
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    first_content_ns: Option<i64>,
}

#[derive(Debug, Default)]
enum Body {
    /// Reading a head.
    #[default]
    Head,
    Length(usize),
    /// Chunked: the size line being read.
    ChunkSize(Vec<u8>),
    ChunkData(usize),
    /// The CRLF after a chunk's data: bytes left.
    ChunkEnd(u8),
    /// The trailer section after the last chunk: the line being read.
    Trailer(Vec<u8>),
    /// No length: the body runs to the connection's end.
    UntilClose,
}

/// Responses one after another, their chunked bodies decoded and read as SSE.
#[derive(Debug, Default)]
struct Responses {
    head: Vec<u8>,
    body: Body,
    events: Events,
    /// Every response whose head came; the last one may still be arriving.
    done: Vec<Response>,
    broken: bool,
}

impl Responses {
    fn feed(&mut self, ts_ns: i64, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.broken {
            match &mut self.body {
                Body::Head => {
                    let Some((head, rest)) = take_head(&mut self.head, bytes) else {
                        self.broken = self.head.len() > MAX_HEAD;
                        return;
                    };
                    bytes = rest;
                    let Some(status) = head
                        .strip_prefix("HTTP/1.")
                        .and_then(|s| s.get(2..5))
                        .and_then(|s| s.parse().ok())
                    else {
                        self.broken = true;
                        return;
                    };
                    self.done.push(Response {
                        status,
                        first_content_ns: None,
                    });
                    self.events = Events::default();
                    let chunked = header(&head, "transfer-encoding")
                        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
                    let length = header(&head, "content-length").and_then(|v| v.parse().ok());
                    self.body = if chunked {
                        Body::ChunkSize(Vec::new())
                    } else if let Some(n) = length {
                        Body::Length(n)
                    } else if status < 200 || status == 204 || status == 304 {
                        Body::Length(0)
                    } else {
                        Body::UntilClose
                    };
                    if matches!(self.body, Body::Length(0)) {
                        self.end();
                    }
                }
                Body::Length(left) => {
                    let n = (*left).min(bytes.len());
                    *left -= n;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        self.end();
                    }
                }
                Body::UntilClose => return,
                Body::ChunkSize(line) => {
                    let Some(at) = bytes.iter().position(|&b| b == b'\n') else {
                        line.extend_from_slice(bytes);
                        self.broken = line.len() > MAX_HEAD;
                        return;
                    };
                    line.extend_from_slice(&bytes[..at]);
                    bytes = &bytes[at + 1..];
                    let text = String::from_utf8_lossy(line);
                    let size = text.split(';').next().unwrap_or_default().trim();
                    match usize::from_str_radix(size, 16) {
                        Ok(0) => self.body = Body::Trailer(Vec::new()),
                        Ok(n) => self.body = Body::ChunkData(n),
                        Err(_) => self.broken = true,
                    }
                }
                Body::ChunkData(left) => {
                    let n = (*left).min(bytes.len());
                    *left -= n;
                    if let Some(at) = self.events.feed(ts_ns, &bytes[..n]) {
                        if let Some(r) = self.done.last_mut() {
                            r.first_content_ns = Some(at);
                        }
                    }
                    bytes = &bytes[n..];
                    if *left == 0 {
                        self.body = Body::ChunkEnd(2);
                    }
                }
                Body::ChunkEnd(left) => {
                    let n = usize::from(*left).min(bytes.len());
                    *left -= n as u8;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        self.body = Body::ChunkSize(Vec::new());
                    }
                }
                Body::Trailer(line) => {
                    let Some(at) = bytes.iter().position(|&b| b == b'\n') else {
                        line.extend_from_slice(bytes);
                        return;
                    };
                    let empty = line.iter().chain(&bytes[..at]).all(|&b| b == b'\r');
                    bytes = &bytes[at + 1..];
                    line.clear();
                    if empty {
                        self.end();
                    }
                }
            }
        }
    }

    fn end(&mut self) {
        self.body = Body::Head;
    }
}

/// SSE events of one response, until the first one with content.
#[derive(Debug, Default)]
struct Events {
    line: Vec<u8>,
    /// The event being read has a `data:` line with non-empty content.
    content: bool,
    found: bool,
}

impl Events {
    /// Reads on; the time of the first event with content, when these bytes completed it.
    fn feed(&mut self, ts_ns: i64, mut bytes: &[u8]) -> Option<i64> {
        while !self.found && !bytes.is_empty() {
            let Some(at) = bytes.iter().position(|&b| b == b'\n') else {
                self.line.extend_from_slice(bytes);
                return None;
            };
            self.line.extend_from_slice(&bytes[..at]);
            bytes = &bytes[at + 1..];
            let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
            if line.is_empty() {
                // A blank line ends the event: the client can act on it only now.
                if self.content {
                    self.found = true;
                    return Some(ts_ns);
                }
            } else if let Some(data) = line.strip_prefix(b"data:") {
                self.content |= has_content(data);
            }
            self.line.clear();
        }
        None
    }
}

/// Whether an event's data carries generated text: a non-empty `content` (chat) or `text`
/// (completions). The role-only opening chunk has `"content":""`.
pub(crate) fn has_content(data: &[u8]) -> bool {
    [&b"\"content\":\""[..], b"\"text\":\""].iter().any(|key| {
        data.windows(key.len())
            .enumerate()
            .any(|(at, w)| w == *key && data.get(at + key.len()).is_some_and(|&c| c != b'"'))
    })
}

/// Appends `bytes` to `buf` until the blank line that ends a head; then the head (as text)
/// and the bytes after it, and `buf` is emptied for the next one.
fn take_head<'a>(buf: &mut Vec<u8>, bytes: &'a [u8]) -> Option<(String, &'a [u8])> {
    // The terminator may straddle two segments: look from just before the new bytes.
    let from = buf.len().saturating_sub(3);
    let old = buf.len();
    buf.extend_from_slice(bytes);
    let at = buf[from..].windows(4).position(|w| w == b"\r\n\r\n")? + from;
    let used = at + 4 - old;
    let head = String::from_utf8_lossy(&buf[..at]).into_owned();
    buf.clear();
    Some((head, &bytes[used..]))
}

/// A header's value (the first one, trimmed), the name matched without case.
pub(crate) fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::super::pcap::{self, synth, Endpoint, Segment, TCP_SYN};
    use super::*;

    const SERVER: u16 = 8000;

    fn segment(
        from_client: bool,
        client_port: u16,
        seq: u32,
        flags: u8,
        payload: &[u8],
    ) -> Segment<'_> {
        let client = Endpoint {
            ip: [127, 0, 0, 1],
            port: client_port,
        };
        let server = Endpoint {
            ip: [127, 0, 0, 1],
            port: SERVER,
        };
        let (src, dst) = if from_client {
            (client, server)
        } else {
            (server, client)
        };
        Segment {
            src,
            dst,
            seq,
            flags,
            payload,
        }
    }

    fn request(id: &str, body: &str) -> String {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\ncontent-type: application/json\r\nX-Request-Id: {id}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn chunk(data: &str) -> String {
        format!("{:x}\r\n{data}\r\n", data.len())
    }

    const HEAD: &str =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    const ROLE: &str =
        "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
    const TOKEN: &str = "data: {\"choices\":[{\"delta\":{\"content\":\" the\"}}]}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    #[test]
    fn content_is_told_from_the_role_chunk() {
        assert!(!has_content(ROLE.as_bytes()));
        assert!(has_content(TOKEN.as_bytes()));
        assert!(has_content(br#"{"choices":[{"index":0,"text":" a"}]}"#));
        assert!(!has_content(
            br#"{"choices":[],"usage":{"prompt_tokens":3}}"#
        ));
        assert!(!has_content(b" [DONE]"));
    }

    #[test]
    fn headers_are_found_without_case() {
        let head = "POST / HTTP/1.1\r\nContent-Length: 12\r\nx-request-id:  req-3 ";
        assert_eq!(header(head, "content-length"), Some("12"));
        assert_eq!(header(head, "X-REQUEST-ID"), Some("req-3"));
        assert_eq!(header(head, "host"), None);
    }

    /// Two requests on one connection, every part split across segments where it hurts: the
    /// head's blank line, the body's last byte, a chunk size line, the event's blank line.
    #[test]
    fn requests_and_first_content_events_are_timed_by_the_packet_that_completes_them() {
        let mut t = Tracker::new(SERVER);
        let (cisn, sisn) = (1000u32, 5000u32);
        t.segment(1, &segment(true, 40000, cisn, TCP_SYN, b""));
        t.segment(2, &segment(false, 40000, sisn, TCP_SYN, b""));
        let r1 = request("req-1", "{\"a\":1}");
        let split = r1.len() - 1;
        let mut up = cisn + 1;
        t.segment(10, &segment(true, 40000, up, 0, &r1.as_bytes()[..split]));
        t.segment(
            11,
            &segment(true, 40000, up + split as u32, 0, &r1.as_bytes()[split..]),
        );
        up += r1.len() as u32;
        // The head and the role chunk in one segment; the token's event ends in the next.
        let mut down = sisn + 1;
        let first = format!("{HEAD}{}", chunk(ROLE));
        t.segment(20, &segment(false, 40000, down, 0, first.as_bytes()));
        down += first.len() as u32;
        let token = chunk(TOKEN);
        let cut = token.len() - 3; // before the event's second newline
        t.segment(
            30,
            &segment(false, 40000, down, 0, &token.as_bytes()[..cut]),
        );
        t.segment(
            31,
            &segment(false, 40000, down + cut as u32, 0, &token.as_bytes()[cut..]),
        );
        down += token.len() as u32;
        let rest = format!("{}{}0\r\n\r\n", chunk(TOKEN), chunk(DONE));
        t.segment(40, &segment(false, 40000, down, 0, rest.as_bytes()));
        down += rest.len() as u32;
        // The second request reuses the connection; its response splits a chunk size line.
        let r2 = request("req-2", "{}");
        t.segment(50, &segment(true, 40000, up, 0, r2.as_bytes()));
        let second = format!("{HEAD}{}{}", chunk(ROLE), chunk(TOKEN));
        let cut = HEAD.len() + 1;
        t.segment(
            60,
            &segment(false, 40000, down, 0, &second.as_bytes()[..cut]),
        );
        t.segment(
            61,
            &segment(
                false,
                40000,
                down + cut as u32,
                0,
                &second.as_bytes()[cut..],
            ),
        );
        let (mut ex, anomalies) = t.finish();
        ex.sort_by_key(|e| e.request_ns);
        assert_eq!(
            ex,
            [
                WireExchange {
                    id: Some("req-1".to_owned()),
                    request_ns: 11,
                    new_connection_syn_ns: Some(1),
                    status: Some(200),
                    first_content_ns: Some(31),
                },
                WireExchange {
                    id: Some("req-2".to_owned()),
                    request_ns: 50,
                    new_connection_syn_ns: None,
                    // The response has not ended; its first content came.
                    status: Some(200),
                    first_content_ns: Some(61),
                },
            ]
        );
        assert_eq!(anomalies.connections, 1);
        assert_eq!(anomalies.unparsable, 0);
    }

    #[test]
    fn out_of_order_and_retransmitted_bytes_count_once_when_the_stream_is_whole() {
        let mut t = Tracker::new(SERVER);
        t.segment(1, &segment(true, 40001, 0, TCP_SYN, b""));
        t.segment(2, &segment(false, 40001, 100, TCP_SYN, b""));
        let r = request("req-7", "{\"x\":true}");
        let (a, b) = r.as_bytes().split_at(20);
        // The second half first, then the first half twice, then an overlapping resend.
        t.segment(10, &segment(true, 40001, 1 + 20, 0, b));
        t.segment(11, &segment(true, 40001, 1, 0, a));
        t.segment(12, &segment(true, 40001, 1, 0, a));
        t.segment(13, &segment(true, 40001, 1 + 10, 0, &r.as_bytes()[10..]));
        let body = format!(
            "{HEAD}{}{}{}0\r\n\r\n",
            chunk(ROLE),
            chunk(TOKEN),
            chunk(DONE)
        );
        t.segment(20, &segment(false, 40001, 101, 0, body.as_bytes()));
        let (ex, anomalies) = t.finish();
        assert_eq!(ex.len(), 1);
        // The last byte first came at 10, but the request was whole only at 11.
        assert_eq!(ex[0].request_ns, 11);
        assert_eq!(ex[0].first_content_ns, Some(20));
        assert_eq!(anomalies.out_of_order, 1);
        assert_eq!(anomalies.directions_with_gaps, 0);
    }

    #[test]
    fn a_lost_segment_leaves_a_gap_and_no_invented_times() {
        let mut t = Tracker::new(SERVER);
        t.segment(1, &segment(true, 40002, 0, TCP_SYN, b""));
        let r = request("req-9", "{}");
        t.segment(10, &segment(true, 40002, 1 + 5, 0, &r.as_bytes()[5..]));
        // A connection opened before the capture: ignored, counted.
        t.segment(11, &segment(true, 40003, 77, 0, b"POST / HTTP/1.1\r\n"));
        t.segment(12, &segment(true, 40003, 94, 0, b"\r\n"));
        let (ex, anomalies) = t.finish();
        assert!(ex.is_empty());
        assert_eq!(anomalies.directions_with_gaps, 1);
        assert_eq!(anomalies.without_syn, 1);
    }

    #[test]
    fn a_new_syn_on_a_client_port_starts_a_new_connection() {
        let mut t = Tracker::new(SERVER);
        for (syn_ns, isn, id) in [(1, 0u32, "req-1"), (100, 9_000, "req-2")] {
            t.segment(syn_ns, &segment(true, 40004, isn, TCP_SYN, b""));
            t.segment(syn_ns, &segment(true, 40004, isn, TCP_SYN, b"")); // retransmitted
            t.segment(syn_ns + 1, &segment(false, 40004, 50, TCP_SYN, b""));
            let r = request(id, "{}");
            t.segment(syn_ns + 2, &segment(true, 40004, isn + 1, 0, r.as_bytes()));
            // A length-delimited error body, as the mock sends a 429.
            let resp = "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\n\r\n{}";
            t.segment(syn_ns + 3, &segment(false, 40004, 51, 0, resp.as_bytes()));
        }
        let (mut ex, anomalies) = t.finish();
        ex.sort_by_key(|e| e.request_ns);
        assert_eq!(anomalies.connections, 2);
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[1].id.as_deref(), Some("req-2"));
        assert_eq!(ex[1].new_connection_syn_ns, Some(100));
        assert_eq!(ex[1].status, Some(429));
        assert_eq!(ex[1].first_content_ns, None);
    }

    #[test]
    fn a_synthetic_capture_reads_end_to_end() {
        let r = request("req-4", "{}");
        let body = format!("{HEAD}{}{}0\r\n\r\n", chunk(TOKEN), chunk(DONE));
        let mut file = synth::global_header();
        for (ts, port_pair, seq, flags, payload) in [
            (1_000, (40005, SERVER), 10u32, TCP_SYN, &b""[..]),
            (2_000, (SERVER, 40005), 20, TCP_SYN, b""),
            (3_000, (40005, SERVER), 11, 0, r.as_bytes()),
            (9_000, (SERVER, 40005), 21, 0, body.as_bytes()),
        ] {
            file.extend(synth::record(
                ts,
                &synth::frame(port_pair.0, port_pair.1, seq, flags, payload),
            ));
        }
        let mut reader = pcap::Reader::new(file.as_slice()).unwrap();
        let mut t = Tracker::new(SERVER);
        let linktype = reader.format.linktype;
        while let Some((h, frame)) = reader.next_record().unwrap() {
            let s = pcap::tcp_segment(linktype, frame).unwrap();
            t.segment(h.ts_ns, &s);
        }
        let (ex, _) = t.finish();
        assert_eq!(ex.len(), 1);
        assert_eq!(ex[0].request_ns, 3_000);
        assert_eq!(ex[0].first_content_ns, Some(9_000));
        assert_eq!(ex[0].status, Some(200));
    }
}
