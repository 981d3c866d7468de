//! `Transfer-Encoding: chunked`, decoded incrementally from whatever bytes have arrived.

/// Where the decoder is in the chunked stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk's size (hex digits).
    Size { size: u64, digits: u32 },
    /// Skipping a chunk extension up to the line's end.
    Extension { size: u64 },
    /// Expecting the LF of the size line.
    SizeLf { size: u64 },
    /// Inside a chunk's data.
    Data { left: u64 },
    /// Expecting the CR after a chunk's data.
    DataCr,
    /// Expecting the LF after a chunk's data.
    DataLf,
    /// After the last chunk: trailer lines, `at_line_start` until a byte of one arrives.
    Trailer { at_line_start: bool },
    /// Expecting the LF of a trailer line (or of the final empty line when `last`).
    TrailerLf { last: bool },
    /// The body has ended.
    Done,
}

/// A malformed chunked body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid chunked encoding: {0}")]
pub(crate) struct ChunkedError(&'static str);

/// Longest chunk-size line accepted (16 hex digits hold any `u64`).
const MAX_DIGITS: u32 = 16;

#[derive(Debug)]
pub(crate) struct Chunked {
    state: State,
}

impl Default for Chunked {
    fn default() -> Self {
        Self {
            state: State::Size { size: 0, digits: 0 },
        }
    }
}

impl Chunked {
    /// Whether the final chunk and its trailers have been read.
    pub(crate) fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, appending the data to `out`; returns how many bytes of `input` it
    /// consumed (all of them unless the body ended inside it).
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<usize, ChunkedError> {
        let mut at = 0;
        while at < input.len() {
            let byte = input[at];
            self.state = match self.state {
                State::Done => return Ok(at),
                State::Data { left } => {
                    let take = (input.len() - at).min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&input[at..at + take]);
                    at += take;
                    let left = left - take as u64;
                    if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { left }
                    }
                }
                state => {
                    at += 1;
                    step(state, byte)?
                }
            };
        }
        Ok(at)
    }
}

/// One control byte (anything outside chunk data).
fn step(state: State, byte: u8) -> Result<State, ChunkedError> {
    Ok(match state {
        State::Size { size, digits } => match (byte as char).to_digit(16) {
            Some(digit) if digits < MAX_DIGITS => State::Size {
                size: size << 4 | u64::from(digit),
                digits: digits + 1,
            },
            Some(_) => return Err(ChunkedError("a chunk size longer than 16 hex digits")),
            None if digits == 0 => return Err(ChunkedError("a chunk size line without a size")),
            None => match byte {
                b'\r' => State::SizeLf { size },
                b'\n' => after_size(size),
                b';' | b' ' | b'\t' => State::Extension { size },
                _ => return Err(ChunkedError("a stray byte in a chunk size line")),
            },
        },
        State::Extension { size } => match byte {
            b'\r' => State::SizeLf { size },
            b'\n' => after_size(size),
            _ => State::Extension { size },
        },
        State::SizeLf { size } if byte == b'\n' => after_size(size),
        State::SizeLf { .. } => return Err(ChunkedError("a chunk size line not ended by CRLF")),
        State::DataCr => match byte {
            b'\r' => State::DataLf,
            // A bare LF is tolerated, as most clients do.
            b'\n' => State::Size { size: 0, digits: 0 },
            _ => return Err(ChunkedError("a chunk longer than its size")),
        },
        State::DataLf if byte == b'\n' => State::Size { size: 0, digits: 0 },
        State::DataLf => return Err(ChunkedError("a chunk not ended by CRLF")),
        State::Trailer { at_line_start } => match byte {
            b'\r' => State::TrailerLf {
                last: at_line_start,
            },
            b'\n' if at_line_start => State::Done,
            b'\n' => State::Trailer {
                at_line_start: true,
            },
            _ => State::Trailer {
                at_line_start: false,
            },
        },
        State::TrailerLf { last } if byte == b'\n' => {
            if last {
                State::Done
            } else {
                State::Trailer {
                    at_line_start: true,
                }
            }
        }
        State::TrailerLf { .. } => return Err(ChunkedError("a trailer line not ended by CRLF")),
        State::Data { .. } | State::Done => state,
    })
}

/// After a chunk-size line: the data, or the trailers after the last (empty) chunk.
fn after_size(size: u64) -> State {
    if size == 0 {
        State::Trailer {
            at_line_start: true,
        }
    } else {
        State::Data { left: size }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(pieces: &[&[u8]]) -> Result<(Vec<u8>, bool, usize), ChunkedError> {
        let mut decoder = Chunked::default();
        let mut out = Vec::new();
        let mut left_over = 0;
        for piece in pieces {
            let used = decoder.decode(piece, &mut out)?;
            left_over += piece.len() - used;
        }
        Ok((out, decoder.done(), left_over))
    }

    #[test]
    fn bodies_split_anywhere_decode_the_same() {
        let body = b"6\r\nhello \r\n1a;name=value\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: 1\r\n\r\n";
        let expected = b"hello abcdefghijklmnopqrstuvwxyz".to_vec();
        assert_eq!(decode_all(&[body]), Ok((expected.clone(), true, 0)));
        for split in 1..body.len() {
            let (a, b) = body.split_at(split);
            assert_eq!(
                decode_all(&[a, b]),
                Ok((expected.clone(), true, 0)),
                "split at {split}"
            );
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(decode_all(&bytes), Ok((expected, true, 0)));
    }

    #[test]
    fn the_body_ends_at_the_last_chunk_and_leaves_what_follows() {
        assert_eq!(
            decode_all(&[b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1"]),
            Ok((b"abc".to_vec(), true, 8))
        );
        assert_eq!(
            decode_all(&[b"3\r\nabc\r\n"]),
            Ok((b"abc".to_vec(), false, 0)),
            "not done before the last chunk"
        );
        assert_eq!(
            decode_all(&[b"0\n\n"]),
            Ok((Vec::new(), true, 0)),
            "bare LFs"
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert!(decode_all(&[b"zz\r\n"]).is_err());
        assert!(
            decode_all(&[b"3\r\nabcd\r\n"]).is_err(),
            "longer than its size"
        );
        assert!(
            decode_all(&[b"11111111111111111\r\n"]).is_err(),
            "17 digits"
        );
        assert!(decode_all(&[b"3\rx"]).is_err());
    }
}
