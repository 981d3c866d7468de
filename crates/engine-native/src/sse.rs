//! An incremental Server-Sent Events parser (WHATWG rules), fed with whatever byte chunks the
//! network delivers: events split across reads, CRLF or CR line ends, comments, multi-line
//! `data:`.

/// Largest event accepted: a server that sends more without ending the event is broken, and
/// the client must not buffer it without bound.
pub(crate) const MAX_EVENT_BYTES: usize = 16 << 20;

/// Accumulates bytes and yields the `data` of each complete event.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buffer: Vec<u8>,
    /// Start of the unparsed part of `buffer`.
    start: usize,
    /// `buffer[start..searched]` holds no line end: a long line arriving in many reads is
    /// scanned once, not once per read.
    searched: usize,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// Feeds bytes; calls `on_event` with the data of every event they complete.
    pub(crate) fn feed(&mut self, bytes: &[u8], mut on_event: impl FnMut(&str)) {
        self.buffer.extend_from_slice(bytes);
        loop {
            let rest = &self.buffer[self.start..];
            let skip = self.searched.saturating_sub(self.start);
            let Some(end) = rest[skip..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .map(|at| at + skip)
            else {
                self.searched = self.buffer.len();
                break;
            };
            // A CR at the very end may be the first half of a CRLF: wait for the next byte.
            let terminator = if rest[end] == b'\r' {
                match rest.get(end + 1) {
                    None => {
                        self.searched = self.start + end;
                        break;
                    }
                    Some(b'\n') => 2,
                    Some(_) => 1,
                }
            } else {
                1
            };
            let line_start = self.start;
            self.start += end + terminator;
            let bytes = &self.buffer[line_start..line_start + end];
            // Valid UTF-8 is borrowed as is; only a broken line pays for a lossy copy.
            let line = match std::str::from_utf8(bytes) {
                Ok(text) => std::borrow::Cow::Borrowed(text),
                Err(_) => String::from_utf8_lossy(bytes),
            };
            line_into(&mut self.data, &mut self.has_data, &line, &mut on_event);
        }
        // Drop consumed bytes: at once when all are consumed (the usual case, one event per
        // read), else once they are most of the buffer, so it never grows.
        if self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
            self.searched = 0;
        } else if self.start > 4096 && self.start * 2 > self.buffer.len() {
            self.buffer.drain(..self.start);
            self.searched = self.searched.saturating_sub(self.start);
            self.start = 0;
        }
    }

    /// Whether the event being read has grown past [`MAX_EVENT_BYTES`].
    pub(crate) fn oversized(&self) -> bool {
        self.buffer.len() - self.start + self.data.len() > MAX_EVENT_BYTES
    }

    /// Whether bytes of an unfinished event are left (a stream cut mid-event).
    pub(crate) fn has_partial_event(&self) -> bool {
        self.has_data || self.start < self.buffer.len()
    }
}

/// Applies one line to the event being built: a blank line dispatches it.
fn line_into(data: &mut String, has_data: &mut bool, line: &str, on_event: &mut impl FnMut(&str)) {
    if line.is_empty() {
        if *has_data {
            on_event(data);
        }
        data.clear();
        *has_data = false;
        return;
    }
    if line.starts_with(':') {
        return;
    }
    let (field, value) = match line.split_once(':') {
        Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
        None => (line, ""),
    };
    if field == "data" {
        if *has_data {
            data.push('\n');
        }
        data.push_str(value);
        *has_data = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> (Vec<String>, bool) {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for c in chunks {
            parser.feed(c, |e| out.push(e.to_owned()));
        }
        (out, parser.has_partial_event())
    }

    #[test]
    fn events_split_anywhere_parse_the_same() {
        let stream = b"data: {\"a\":1}\n\n: keep-alive\n\ndata: first\ndata: second\n\nevent: x\ndata:[DONE]\n\n";
        let expected = vec![
            "{\"a\":1}".to_owned(),
            "first\nsecond".to_owned(),
            "[DONE]".to_owned(),
        ];
        assert_eq!(events(&[stream]), (expected.clone(), false));
        for split in 1..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(
                events(&[a, b]),
                (expected.clone(), false),
                "split at {split}"
            );
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(events(&bytes), (expected, false));
    }

    #[test]
    fn crlf_and_cr_line_ends() {
        assert_eq!(
            events(&[b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"]).0,
            ["a", "b", "c"]
        );
        assert_eq!(events(&[b"data: a\r", b"\n\r", b"\n"]).0, ["a"]);
    }

    #[test]
    fn an_unterminated_event_is_reported_not_dispatched() {
        assert_eq!(
            events(&[b"data: a\n\ndata: half"]),
            (vec!["a".to_owned()], true)
        );
        assert_eq!(events(&[b"data: a\n"]), (vec![], true));
    }
}

#[cfg(test)]
mod long_lines {
    use super::*;

    /// A 2 MB event arriving in 1 KB reads is scanned once (a quadratic scan would take
    /// seconds here), and parsed whole.
    #[test]
    fn a_long_event_in_small_reads_parses_whole() {
        let payload = "x".repeat(2 << 20);
        let stream = format!("data: {payload}\r\n\r\ndata: [DONE]\n\n");
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        let started = std::time::Instant::now();
        for chunk in stream.as_bytes().chunks(1024) {
            parser.feed(chunk, |d| events.push(d.len()));
            assert!(!parser.oversized());
        }
        assert_eq!(events, [payload.len(), 6]);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn an_event_that_never_ends_is_oversized_past_the_limit() {
        let mut parser = SseParser::default();
        let chunk = vec![b'y'; 1 << 20];
        parser.feed(b"data: ", |_| {});
        for _ in 0..(MAX_EVENT_BYTES >> 20) {
            parser.feed(&chunk, |_| panic!("no event ends"));
        }
        assert!(parser.oversized());
    }
}

/// Property tests: however the network splits the bytes, the events are the same; no input
/// makes the parser panic.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn parse_in(chunks: &[&[u8]]) -> Vec<String> {
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, |d| events.push(d.to_owned()));
        }
        events
    }

    proptest! {
        #[test]
        fn any_split_of_a_stream_gives_the_same_events(
            events in prop::collection::vec("[^\r\n]{0,40}", 0..8),
            crlf in any::<bool>(),
            comment in any::<bool>(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let end = if crlf { "\r\n" } else { "\n" };
            let mut stream = String::new();
            for event in &events {
                if comment {
                    stream.push_str(&format!(": keep-alive{end}"));
                }
                stream.push_str(&format!("data: {event}{end}{end}"));
            }
            let bytes = stream.as_bytes();
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for p in points {
                chunks.push(&bytes[from..p]);
                from = p;
            }
            chunks.push(&bytes[from..]);
            // `data: x` loses the one space after the colon, so each event comes back as is.
            let expected = events.clone();
            prop_assert_eq!(parse_in(&chunks), expected.clone());
            prop_assert_eq!(parse_in(&[bytes]), expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut parser = SseParser::default();
            for chunk in &chunks {
                parser.feed(chunk, |_| {});
            }
            let _ = parser.has_partial_event();
            let _ = parser.oversized();
        }
    }
}
