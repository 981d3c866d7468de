//! Reads from a TCP socket stamped with the kernel's receive time (`SO_TIMESTAMPNS`).
//!
//! A user-space timestamp says when the client got round to reading, which is late by
//! however long the client was busy; the kernel stamps the data when it arrived. Linux (4.14
//! and later) gives a `recvmsg` on a TCP socket the receive time of the last byte it returned,
//! so events that arrived apart but were read together share that one time: the reader counts
//! them as coalesced. The kernel's time is `CLOCK_REALTIME`; each read is paired with a
//! realtime and a monotonic reading taken together, which turns it into an [`Instant`].

use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use nix::sys::time::TimeSpec;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// When the bytes of one read reached the client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    /// When the read returned: what a user-space timestamp would say.
    pub(crate) read: Instant,
    /// When the kernel received the last byte of the read; `None` when the read carried no
    /// timestamp (the option could not be set, or the kernel gave none).
    pub(crate) kernel: Option<Instant>,
}

impl Stamp {
    /// The best time of arrival known: the kernel's, else the read's.
    pub(crate) fn arrival(&self) -> Instant {
        self.kernel.unwrap_or(self.read)
    }

    /// How long the data waited in the kernel for the client to read it.
    pub(crate) fn client_delay(&self) -> Option<Duration> {
        self.kernel
            .map(|kernel| self.read.saturating_duration_since(kernel))
    }
}

/// Asks the kernel to stamp every read of `stream`; false when it refuses (reads then come
/// back without a kernel time and fall back to the read's).
pub(crate) fn enable(stream: &TcpStream) -> bool {
    setsockopt(stream, sockopt::ReceiveTimestampns, &true).is_ok()
}

/// Keeps the kernel stamping received data while it lives.
///
/// Linux stamps incoming packets only while some socket asks for it, and it turns stamping on
/// lazily (from a work queue) when the first socket asks: data arriving in the moment after a
/// connection enabled it may come back unstamped. A socket held open for the whole run turns
/// it on before the first request.
#[derive(Debug)]
pub(crate) struct KeepStamping {
    _socket: Option<std::net::UdpSocket>,
}

impl KeepStamping {
    pub(crate) fn start() -> Self {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0")
            .ok()
            .filter(|socket| setsockopt(socket, sockopt::ReceiveTimestampns, &true).is_ok());
        Self { _socket: socket }
    }
}

/// A reader of one socket with its control-message buffer, reused between reads.
#[derive(Debug)]
pub(crate) struct StampedReader {
    control: Vec<u8>,
    /// Blocks the reading thread this long before each read: tests use it to play a client
    /// that is too busy to read at once.
    pub(crate) busy_before_read: Option<Duration>,
}

impl Default for StampedReader {
    fn default() -> Self {
        Self {
            control: nix::cmsg_space!(TimeSpec),
            busy_before_read: None,
        }
    }
}

impl StampedReader {
    /// Reads what is there (waiting until something is), with its stamp; 0 bytes at the end
    /// of the stream.
    pub(crate) async fn read(
        &mut self,
        stream: &TcpStream,
        buffer: &mut [u8],
    ) -> io::Result<(usize, Stamp)> {
        loop {
            stream.readable().await?;
            if let Some(busy) = self.busy_before_read {
                std::thread::sleep(busy);
            }
            let received = stream.try_io(Interest::READABLE, || {
                receive(stream, buffer, &mut self.control)
            });
            match received {
                Ok((n, kernel_realtime)) => {
                    // Taken together, so their difference converts the kernel's realtime.
                    let read = Instant::now();
                    let now_realtime = SystemTime::now();
                    let kernel = kernel_realtime.map(|at| {
                        read.checked_sub(now_realtime.duration_since(at).unwrap_or_default())
                            .unwrap_or(read)
                    });
                    return Ok((n, Stamp { read, kernel }));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
    }
}

/// One `recvmsg`: the bytes, and the kernel's receive time when it sent one.
#[expect(
    clippy::ptr_arg,
    reason = "nix's recvmsg takes the control buffer as a Vec"
)]
fn receive(
    stream: &TcpStream,
    buffer: &mut [u8],
    control: &mut Vec<u8>,
) -> io::Result<(usize, Option<SystemTime>)> {
    let mut slices = [IoSliceMut::new(buffer)];
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut slices,
        Some(control),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    let mut at = None;
    for message in message.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmTimestampns(time) = message {
            at = realtime(time);
        }
    }
    Ok((message.bytes, at))
}

/// A `CLOCK_REALTIME` reading as a [`SystemTime`]; `None` for a zero or negative time, which
/// the kernel sends when it did not stamp the data.
fn realtime(time: TimeSpec) -> Option<SystemTime> {
    let seconds = u64::try_from(time.tv_sec()).ok()?;
    let nanos = u32::try_from(time.tv_nsec()).ok()?;
    (seconds > 0).then(|| UNIX_EPOCH + Duration::new(seconds, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Data written while the reader is busy is stamped when it arrived, not when it was read;
    /// two writes read together share the later one's time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_carry_the_time_the_data_arrived() {
        let _stamping = KeepStamping::start();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let client = TcpStream::connect(address).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        assert!(enable(&client), "SO_TIMESTAMPNS on a TCP socket");

        let written = Instant::now();
        server.write_all(b"first").await.unwrap();
        // The reader is busy: the data waits in the kernel.
        std::thread::sleep(Duration::from_millis(30));
        let mut reader = StampedReader::default();
        let mut buffer = [0u8; 64];
        let (n, stamp) = reader.read(&client, &mut buffer).await.unwrap();
        assert_eq!(&buffer[..n], b"first");
        let kernel = stamp.kernel.expect("a kernel time");
        assert!(
            kernel >= written - Duration::from_millis(5),
            "not before the write"
        );
        assert!(
            stamp.client_delay().unwrap() >= Duration::from_millis(20),
            "the read came about 30 ms after the data: {:?}",
            stamp.client_delay()
        );

        server.write_all(b"a").await.unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let second = Instant::now();
        server.write_all(b"b").await.unwrap();
        std::thread::sleep(Duration::from_millis(10));
        let (n, stamp) = reader.read(&client, &mut buffer).await.unwrap();
        assert_eq!(&buffer[..n], b"ab");
        assert!(
            stamp.kernel.unwrap() >= second - Duration::from_millis(5),
            "a read that consumed two arrivals gets the last one's time"
        );

        drop(server);
        let (n, _) = reader.read(&client, &mut buffer).await.unwrap();
        assert_eq!(n, 0, "the end of the stream");
    }

    #[test]
    fn an_unstamped_time_is_none() {
        assert!(realtime(TimeSpec::new(0, 0)).is_none());
        assert!(realtime(TimeSpec::new(-1, 0)).is_none());
        assert!(realtime(TimeSpec::new(1_700_000_000, 5)).is_some());
    }
}
