//! The classic pcap file format (what `tcpdump -w` writes, not pcapng), down to TCP segments
//! over IPv4: enough to read a loopback capture without a pcap library.

use std::io::Read;

use anyhow::{bail, Context as _};

/// `DLT_EN10MB`: what Linux reports for `lo` (an all-zero Ethernet header).
pub(crate) const LINKTYPE_ETHERNET: u32 = 1;
/// `DLT_LINUX_SLL`: what `-i any` gives.
pub(crate) const LINKTYPE_LINUX_SLL: u32 = 113;

pub(crate) const TCP_SYN: u8 = 0x02;

/// What the global header says about the records after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Format {
    /// Fractions of a second in nanoseconds (magic 0xa1b23c4d) rather than microseconds.
    pub(crate) nanos: bool,
    /// Written on a machine of the other byte order.
    swapped: bool,
    pub(crate) linktype: u32,
}

/// Reads the 24-byte global header.
pub(crate) fn global_header(h: &[u8; 24]) -> anyhow::Result<Format> {
    let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let (nanos, swapped) = match magic {
        0xa1b2_c3d4 => (false, false),
        0xa1b2_3c4d => (true, false),
        0xd4c3_b2a1 => (false, true),
        0x4d3c_b2a1 => (true, true),
        // pcapng starts with a section header block.
        0x0a0d_0d0a => bail!("the capture is pcapng, not pcap: write it with `tcpdump -w`"),
        other => bail!("not a pcap file (magic {other:#010x})"),
    };
    let linktype = u32_at(h, 20, swapped);
    Ok(Format {
        nanos,
        swapped,
        linktype,
    })
}

/// One record's header: its time and how many bytes were kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    /// Nanoseconds since the Unix epoch (CLOCK_REALTIME when the kernel stamped the packet).
    pub(crate) ts_ns: i64,
    pub(crate) caplen: u32,
    pub(crate) origlen: u32,
}

pub(crate) fn record_header(format: Format, h: &[u8; 16]) -> RecordHeader {
    let seconds = i64::from(u32_at(h, 0, format.swapped));
    let fraction = i64::from(u32_at(h, 4, format.swapped));
    RecordHeader {
        ts_ns: seconds * 1_000_000_000
            + if format.nanos {
                fraction
            } else {
                fraction * 1000
            },
        caplen: u32_at(h, 8, format.swapped),
        origlen: u32_at(h, 12, format.swapped),
    }
}

fn u32_at(bytes: &[u8], at: usize, swapped: bool) -> u32 {
    let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
    if swapped {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// An IPv4 address and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Endpoint {
    pub(crate) ip: [u8; 4],
    pub(crate) port: u16,
}

/// One TCP segment, borrowed from its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment<'a> {
    pub(crate) src: Endpoint,
    pub(crate) dst: Endpoint,
    pub(crate) seq: u32,
    pub(crate) flags: u8,
    pub(crate) payload: &'a [u8],
}

/// The TCP segment in a frame, or `None` for anything else (ARP, IPv6, UDP, a fragment, a
/// frame cut short).
pub(crate) fn tcp_segment(linktype: u32, frame: &[u8]) -> Option<Segment<'_>> {
    let (ethertype, ip) = match linktype {
        LINKTYPE_ETHERNET => (be16(frame, 12)?, frame.get(14..)?),
        LINKTYPE_LINUX_SLL => (be16(frame, 14)?, frame.get(16..)?),
        _ => return None,
    };
    if ethertype != 0x0800 || ip.first()? >> 4 != 4 {
        return None;
    }
    let header = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2)?);
    let fragment = be16(ip, 6)?;
    // More fragments, or an offset: not a whole segment.
    if ip.get(9)? != &6 || fragment & 0x3fff != 0 || header < 20 || total < header {
        return None;
    }
    // The IP total length, not the frame, bounds the segment (Ethernet pads short frames).
    let tcp = ip.get(header..total.min(ip.len()))?;
    let offset = usize::from(tcp.get(12)? >> 4) * 4;
    if offset < 20 {
        return None;
    }
    let address = |at: usize| -> Option<[u8; 4]> { ip.get(at..at + 4)?.try_into().ok() };
    Some(Segment {
        src: Endpoint {
            ip: address(12)?,
            port: be16(tcp, 0)?,
        },
        dst: Endpoint {
            ip: address(16)?,
            port: be16(tcp, 2)?,
        },
        seq: u32::from_be_bytes(tcp.get(4..8)?.try_into().ok()?),
        flags: *tcp.get(13)?,
        payload: tcp.get(offset..)?,
    })
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

/// Records one after another, without holding the file in memory.
pub(crate) struct Reader<R> {
    inner: R,
    pub(crate) format: Format,
    frame: Vec<u8>,
    /// Records whose frame was cut by the snapshot length.
    pub(crate) truncated: u64,
    /// The file ended inside a record (tcpdump stopped before flushing it).
    pub(crate) cut_short: bool,
}

impl<R: Read> Reader<R> {
    pub(crate) fn new(mut inner: R) -> anyhow::Result<Self> {
        let mut header = [0u8; 24];
        inner
            .read_exact(&mut header)
            .context("the capture has no pcap header")?;
        Ok(Self {
            inner,
            format: global_header(&header)?,
            frame: Vec::new(),
            truncated: 0,
            cut_short: false,
        })
    }

    /// The next record's header and frame, or `None` at the end of the file.
    pub(crate) fn next_record(&mut self) -> anyhow::Result<Option<(RecordHeader, &[u8])>> {
        let mut h = [0u8; 16];
        match read_full(&mut self.inner, &mut h)? {
            0 => return Ok(None),
            16 => {}
            _ => {
                self.cut_short = true;
                return Ok(None);
            }
        }
        let header = record_header(self.format, &h);
        if header.caplen > 1 << 24 {
            bail!(
                "a pcap record claims {} bytes: the file is damaged",
                header.caplen
            );
        }
        if header.caplen < header.origlen {
            self.truncated += 1;
        }
        self.frame.resize(header.caplen as usize, 0);
        if read_full(&mut self.inner, &mut self.frame)? < self.frame.len() {
            self.cut_short = true;
            return Ok(None);
        }
        Ok(Some((header, &self.frame)))
    }
}

/// Reads until `buf` is full or the input ends; how many bytes it got.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> anyhow::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("cannot read the capture"),
        }
    }
    Ok(got)
}

/// Builders of synthetic captures, for the tests of this module and of the HTTP tracker.
#[cfg(test)]
pub(crate) mod synth {
    /// A nanosecond pcap global header for `lo` (little-endian, as x86 writes it).
    pub(crate) fn global_header() -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&0xa1b2_3c4d_u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&262_144u32.to_le_bytes());
        h.extend_from_slice(&super::LINKTYPE_ETHERNET.to_le_bytes());
        h
    }

    /// An Ethernet + IPv4 + TCP frame from `src_port` to `dst_port` on 127.0.0.1, with 12
    /// bytes of TCP options as Linux sends them (timestamps).
    pub(crate) fn frame(
        src_port: u16,
        dst_port: u16,
        seq: u32,
        flags: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        let tcp_len = 32 + payload.len();
        let total = u16::try_from(20 + tcp_len).expect("a small test frame");
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        f.extend_from_slice(&src_port.to_be_bytes());
        f.extend_from_slice(&dst_port.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&0u32.to_be_bytes());
        f.extend_from_slice(&[0x80, flags | 0x10, 0, 64, 0, 0, 0, 0]);
        f.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        f.extend_from_slice(payload);
        f
    }

    /// A record header and its frame, stamped `ts_ns` after the epoch.
    pub(crate) fn record(ts_ns: i64, frame: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        let len = u32::try_from(frame.len()).expect("a small test frame");
        r.extend_from_slice(&u32::try_from(ts_ns / 1_000_000_000).unwrap().to_le_bytes());
        r.extend_from_slice(&u32::try_from(ts_ns % 1_000_000_000).unwrap().to_le_bytes());
        r.extend_from_slice(&len.to_le_bytes());
        r.extend_from_slice(&len.to_le_bytes());
        r.extend_from_slice(frame);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_header_knows_both_precisions_and_byte_orders() {
        let mut h: [u8; 24] = synth::global_header().try_into().unwrap();
        let f = global_header(&h).unwrap();
        assert!(f.nanos);
        assert_eq!(f.linktype, LINKTYPE_ETHERNET);
        // Microseconds, written big-endian.
        h[..4].copy_from_slice(&0xa1b2_c3d4_u32.to_be_bytes());
        h[20..].copy_from_slice(&LINKTYPE_LINUX_SLL.to_be_bytes());
        let f = global_header(&h).unwrap();
        assert!(!f.nanos);
        assert_eq!(f.linktype, LINKTYPE_LINUX_SLL);
        let header = record_header(f, &[0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0, 0, 9]);
        assert_eq!(header.ts_ns, 2_000_007_000);
        assert_eq!(header.caplen, 9);
        h[..4].copy_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
        assert!(global_header(&h)
            .unwrap_err()
            .to_string()
            .contains("pcapng"));
        h[..4].copy_from_slice(b"GIF8");
        assert!(global_header(&h).is_err());
    }

    #[test]
    fn a_frame_decodes_to_its_segment() {
        let frame = synth::frame(40000, 8000, 77, 0x08, b"POST /");
        let s = tcp_segment(LINKTYPE_ETHERNET, &frame).unwrap();
        assert_eq!(s.src.port, 40000);
        assert_eq!(s.dst.port, 8000);
        assert_eq!(s.dst.ip, [127, 0, 0, 1]);
        assert_eq!(s.seq, 77);
        assert_eq!(s.flags & TCP_SYN, 0);
        assert_eq!(s.payload, b"POST /");
        // Ethernet padding after the IP packet is not payload.
        let mut padded = frame.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(
            tcp_segment(LINKTYPE_ETHERNET, &padded).unwrap().payload,
            b"POST /"
        );
        // Not IPv4, not TCP, cut short.
        let mut v6 = frame.clone();
        v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert!(tcp_segment(LINKTYPE_ETHERNET, &v6).is_none());
        let mut udp = frame.clone();
        udp[14 + 9] = 17;
        assert!(tcp_segment(LINKTYPE_ETHERNET, &udp).is_none());
        assert!(tcp_segment(LINKTYPE_ETHERNET, &frame[..30]).is_none());
        assert!(tcp_segment(LINKTYPE_ETHERNET, &[]).is_none());
    }

    #[test]
    fn the_reader_walks_records_and_stops_at_a_cut() {
        let mut file = synth::global_header();
        file.extend(synth::record(
            1_700_000_000_123_456_789,
            &synth::frame(1, 2, 3, 0, b"a"),
        ));
        file.extend(synth::record(
            1_700_000_001_000_000_000,
            &synth::frame(2, 1, 9, 0, b"bc"),
        ));
        let whole = file.len();
        file.extend(synth::record(
            1_700_000_002_000_000_000,
            &synth::frame(1, 2, 4, 0, b"d"),
        ));
        file.truncate(whole + 20);
        let mut reader = Reader::new(file.as_slice()).unwrap();
        let (h, frame) = reader.next_record().unwrap().unwrap();
        assert_eq!(h.ts_ns, 1_700_000_000_123_456_789);
        assert_eq!(tcp_segment(LINKTYPE_ETHERNET, frame).unwrap().payload, b"a");
        let (h, _) = reader.next_record().unwrap().unwrap();
        assert_eq!(h.ts_ns, 1_700_000_001_000_000_000);
        assert!(reader.next_record().unwrap().is_none());
        assert!(reader.cut_short);
        assert!(Reader::new(&b"short"[..]).is_err());
    }
}
