//! The remote-syslog receiver: the SMS's "ArcSight CEF Format v4.2" events over UDP and/or TCP,
//! read into reputation hits and handed to the pull as they arrive.
//!
//! - UDP: one message per datagram (a datagram holding several newline-separated lines is read
//!   line by line).
//! - TCP (RFC 6587): each message either ends with a newline (non-transparent framing) or is
//!   preceded by its length in bytes and a space (octet counting); both may be mixed on one
//!   connection. A message longer than [`MAX_MESSAGE`] closes the connection (the framing
//!   cannot be trusted after it); at most [`MAX_CONNECTIONS`] connections are served at once.
//! - Every message is parsed where it is received; what is not a CEF record or not a reputation
//!   hit travels on as a rejection with the peer's address, so the run log says who sent it.
//! - Memory stays bounded: messages go through a channel of [`QUEUE`] entries; when it is full
//!   (the store is slower than the senders) a message is dropped and counted, never queued.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::events::{Hit, cef_hit};
use crate::cef;

/// Messages waiting for the pull, at most.
pub(crate) const QUEUE: usize = 10_000;
/// The longest message read, in bytes.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;
/// TCP connections served at once, at most.
pub(crate) const MAX_CONNECTIONS: usize = 256;

/// Which transports to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// UDP only.
    Udp,
    /// TCP only.
    Tcp,
    /// Both, on the same port number.
    Both,
}

impl Protocol {
    pub(crate) fn parse(text: &str) -> Option<Protocol> {
        match text {
            "udp" => Some(Protocol::Udp),
            "tcp" => Some(Protocol::Tcp),
            "both" => Some(Protocol::Both),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Both => "udp and tcp",
        }
    }
}

/// What a received message became.
#[derive(Debug)]
pub(crate) enum Received {
    /// A reputation hit.
    Hit(Hit),
    /// Not one: the reason code, a sentence, the peer and the start of the message.
    Rejected {
        reason: &'static str,
        detail: String,
        peer: SocketAddr,
        sample: String,
    },
}

/// The running receiver. Dropping it stops the sockets.
pub(crate) struct Listener {
    /// Received messages.
    pub rx: mpsc::Receiver<Received>,
    /// Messages dropped because the queue was full.
    pub dropped: Arc<AtomicU64>,
    /// The bound addresses (UDP, TCP).
    pub bound: (Option<SocketAddr>, Option<SocketAddr>),
    _stop: tokio_util::sync::DropGuard,
}

struct Sink {
    tx: mpsc::Sender<Received>,
    dropped: Arc<AtomicU64>,
}

impl Sink {
    fn message(&self, peer: SocketAddr, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_matches(['\r', '\n', '\0', ' ']);
        if text.is_empty() {
            return;
        }
        let item = match cef::parse(text) {
            Ok(record) => match cef_hit(&record) {
                Ok(hit) => Received::Hit(hit),
                // Other IPS events are expected on the same feed: counted, not logged.
                Err(reason) => Received::Rejected {
                    reason,
                    detail: String::new(),
                    peer,
                    sample: String::new(),
                },
            },
            Err(e) => Received::Rejected {
                reason: "malformed_cef",
                detail: e.to_string(),
                peer,
                sample: text.chars().take(120).collect(),
            },
        };
        if self.tx.try_send(item).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Binds `addr` for `protocol` and starts receiving until `cancel` (or the [`Listener`] is
/// dropped).
///
/// # Errors
/// When a socket cannot be bound (address in use, not local, no permission).
pub(crate) async fn start(
    addr: SocketAddr,
    protocol: Protocol,
    cancel: &CancellationToken,
) -> std::io::Result<Listener> {
    let stop = cancel.child_token();
    let (tx, rx) = mpsc::channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let sink = Arc::new(Sink {
        tx,
        dropped: dropped.clone(),
    });
    let mut bound = (None, None);
    if matches!(protocol, Protocol::Udp | Protocol::Both) {
        let socket = UdpSocket::bind(addr).await?;
        bound.0 = socket.local_addr().ok();
        tokio::spawn(udp_loop(socket, sink.clone(), stop.clone()));
    }
    if matches!(protocol, Protocol::Tcp | Protocol::Both) {
        // `both` with port 0: TCP takes the port UDP was given.
        let at = match (protocol, bound.0) {
            (Protocol::Both, Some(udp)) if addr.port() == 0 => udp,
            _ => addr,
        };
        let listener = TcpListener::bind(at).await?;
        bound.1 = listener.local_addr().ok();
        tokio::spawn(tcp_accept(listener, sink, stop.clone()));
    }
    Ok(Listener {
        rx,
        dropped,
        bound,
        _stop: stop.drop_guard(),
    })
}

async fn udp_loop(socket: UdpSocket, sink: Arc<Sink>, stop: CancellationToken) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            () = stop.cancelled() => return,
        };
        match received {
            Ok((n, peer)) => {
                for line in buf[..n].split(|b| *b == b'\n') {
                    sink.message(peer, line);
                }
            }
            // ICMP errors and the like surface here on some systems; keep receiving.
            Err(e) => tracing::debug!(error = %e, "Syslog UDP receive failed"),
        }
    }
}

async fn tcp_accept(listener: TcpListener, sink: Arc<Sink>, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stop.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "Syslog TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "Refused a syslog TCP connection: {MAX_CONNECTIONS} are open");
            continue;
        };
        let (sink, stop) = (sink.clone(), stop.clone());
        tokio::spawn(async move {
            tcp_connection(stream, peer, &sink, &stop).await;
            drop(permit);
        });
    }
}

/// One frame cut from the front of a TCP buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole message.
    Message(Vec<u8>),
    /// More bytes are needed.
    Incomplete,
    /// The message is longer than [`MAX_MESSAGE`].
    TooLong,
}

/// Cuts the next message from `buf` (RFC 6587: octet counting when it starts with digits and a
/// space, otherwise up to a newline). At the end of the stream (`eof`), what is left is the
/// last message.
pub(crate) fn next_frame(buf: &mut Vec<u8>, eof: bool) -> Frame {
    let skip = buf
        .iter()
        .take_while(|b| matches!(b, b'\n' | b'\r' | b'\0'))
        .count();
    buf.drain(..skip);
    if buf.is_empty() {
        return Frame::Incomplete;
    }
    let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 0 && buf.get(digits) == Some(&b' ') {
        let len: usize = std::str::from_utf8(&buf[..digits])
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(usize::MAX);
        if len > MAX_MESSAGE {
            return Frame::TooLong;
        }
        let end = digits + 1 + len;
        if buf.len() < end {
            return if eof {
                Frame::Message(buf.drain(..).skip(digits + 1).collect())
            } else {
                Frame::Incomplete
            };
        }
        let message = buf[digits + 1..end].to_vec();
        buf.drain(..end);
        return Frame::Message(message);
    }
    match buf.iter().position(|b| *b == b'\n') {
        Some(at) => {
            let message = buf[..at].to_vec();
            buf.drain(..=at);
            Frame::Message(message)
        }
        None if buf.len() > MAX_MESSAGE => Frame::TooLong,
        None if eof => Frame::Message(std::mem::take(buf)),
        None => Frame::Incomplete,
    }
}

async fn tcp_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    sink: &Sink,
    stop: &CancellationToken,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            r = stream.read(&mut chunk) => r,
            () = stop.cancelled() => return,
        };
        let (n, eof) = match read {
            Ok(0) => (0, true),
            Ok(n) => (n, false),
            Err(e) => {
                tracing::debug!(%peer, error = %e, "Syslog TCP connection failed");
                (0, true)
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match next_frame(&mut buf, eof) {
                Frame::Message(m) => sink.message(peer, &m),
                Frame::Incomplete => break,
                Frame::TooLong => {
                    let item = Received::Rejected {
                        reason: "message_too_long",
                        detail: format!(
                            "a message longer than {MAX_MESSAGE} bytes; the connection is closed"
                        ),
                        peer,
                        sample: String::from_utf8_lossy(&buf[..buf.len().min(120)]).into(),
                    };
                    if sink.tx.try_send(item).is_err() {
                        sink.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
            }
        }
        if eof {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], eof: bool) -> (Vec<String>, Vec<u8>) {
        let mut buf = input.to_vec();
        let mut out = Vec::new();
        while let Frame::Message(m) = next_frame(&mut buf, eof) {
            out.push(String::from_utf8_lossy(&m).into_owned());
        }
        (out, buf)
    }

    #[test]
    fn newline_and_octet_counted_frames_mix() {
        let (out, rest) = frames(b"<13>a CEF:x\n11 <13>b CEF:y5 <13>c\r\n\n<13>d", false);
        assert_eq!(out, ["<13>a CEF:x", "<13>b CEF:y", "<13>c"]);
        assert_eq!(rest, b"<13>d");
        let (out, rest) = frames(b"<13>d", true);
        assert_eq!((out, rest), (vec!["<13>d".to_string()], Vec::new()));
    }

    #[test]
    fn partial_octet_counted_frames_wait() {
        let mut buf = b"19 <13>only part".to_vec();
        assert_eq!(next_frame(&mut buf, false), Frame::Incomplete);
        buf.extend_from_slice(b" of it");
        assert_eq!(
            next_frame(&mut buf, false),
            Frame::Message(b"<13>only part of it".to_vec())
        );
    }

    #[test]
    fn oversized_messages_are_refused() {
        let mut buf = format!("{} x", MAX_MESSAGE + 1).into_bytes();
        assert_eq!(next_frame(&mut buf, false), Frame::TooLong);
        let mut buf = vec![b'a'; MAX_MESSAGE + 1];
        assert_eq!(next_frame(&mut buf, false), Frame::TooLong);
        let mut buf = b"99999999999999999999999 x".to_vec();
        assert_eq!(next_frame(&mut buf, false), Frame::TooLong);
    }
}
