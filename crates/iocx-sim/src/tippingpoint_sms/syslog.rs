//! Sending syslog lines to the configured loopback targets: one UDP datagram per line, and a TCP
//! stream that reconnects when the receiver goes away, framed by newlines or by octet counts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// How lines are framed on the TCP stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TcpFraming {
    /// Each line ends with `\n` (RFC 6587 non-transparent framing).
    Lf,
    /// Each line is preceded by its length in bytes and a space (RFC 6587 octet counting).
    OctetCounting,
}

/// Counters of what was sent.
#[derive(Debug, Default)]
pub struct Counters {
    /// Datagrams sent over UDP.
    pub udp_sent: AtomicU64,
    /// Lines written to TCP.
    pub tcp_sent: AtomicU64,
    /// Lines that could not be delivered.
    pub dropped: AtomicU64,
}

impl Counters {
    /// The counters as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "udp_sent": self.udp_sent.load(Ordering::SeqCst),
            "tcp_sent": self.tcp_sent.load(Ordering::SeqCst),
            "dropped": self.dropped.load(Ordering::SeqCst),
        })
    }
}

/// The syslog sender. Cloning shares the sockets.
#[derive(Debug, Clone)]
pub struct Emitter {
    udp: Option<(Arc<UdpSocket>, SocketAddr)>,
    tcp: Option<mpsc::UnboundedSender<String>>,
    /// What was sent.
    pub counters: Arc<Counters>,
}

/// Refuses targets off the loopback interface.
///
/// # Errors
/// When `addr` is not a loopback address.
pub fn check_loopback(flag: &str, addr: SocketAddr) -> anyhow::Result<()> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        anyhow::bail!("{flag} {addr}: syslog targets must be loopback addresses")
    }
}

impl Emitter {
    /// An emitter that sends nowhere.
    pub fn none() -> Emitter {
        Emitter {
            udp: None,
            tcp: None,
            counters: Arc::new(Counters::default()),
        }
    }

    /// Opens the UDP socket (bound to loopback) and starts the TCP writer task.
    ///
    /// # Errors
    /// A non-loopback target, or a UDP socket that cannot be bound.
    pub async fn start(
        udp: Option<SocketAddr>,
        tcp: Option<SocketAddr>,
        framing: TcpFraming,
    ) -> anyhow::Result<Emitter> {
        let counters = Arc::new(Counters::default());
        let udp = match udp {
            None => None,
            Some(target) => {
                check_loopback("--syslog-udp", target)?;
                let bind = if target.is_ipv6() {
                    "[::1]:0"
                } else {
                    "127.0.0.1:0"
                };
                let socket = UdpSocket::bind(bind).await?;
                Some((Arc::new(socket), target))
            }
        };
        let tcp = match tcp {
            None => None,
            Some(target) => {
                check_loopback("--syslog-tcp", target)?;
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(tcp_writer(target, framing, rx, counters.clone()));
                Some(tx)
            }
        };
        Ok(Emitter { udp, tcp, counters })
    }

    /// Whether any target is configured.
    pub fn has_targets(&self) -> bool {
        self.udp.is_some() || self.tcp.is_some()
    }

    /// Sends one line to every target.
    pub async fn send(&self, line: &str) {
        if let Some((socket, target)) = &self.udp {
            match socket.send_to(line.as_bytes(), target).await {
                Ok(_) => self.counters.udp_sent.fetch_add(1, Ordering::SeqCst),
                Err(_) => self.counters.dropped.fetch_add(1, Ordering::SeqCst),
            };
        }
        if let Some(tx) = &self.tcp
            && tx.send(line.to_string()).is_err()
        {
            self.counters.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn tcp_writer(
    target: SocketAddr,
    framing: TcpFraming,
    mut lines: mpsc::UnboundedReceiver<String>,
    counters: Arc<Counters>,
) {
    let mut stream: Option<TcpStream> = None;
    while let Some(line) = lines.recv().await {
        let framed = match framing {
            TcpFraming::Lf => format!("{line}\n"),
            TcpFraming::OctetCounting => format!("{} {line}", line.len()),
        };
        let mut delivered = false;
        // One reconnect per line: a receiver that went away gets one fresh connection.
        for _ in 0..2 {
            if stream.is_none() {
                stream = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(target))
                    .await
                    .ok()
                    .and_then(Result::ok);
            }
            let Some(s) = stream.as_mut() else {
                break;
            };
            if s.write_all(framed.as_bytes()).await.is_ok() && s.flush().await.is_ok() {
                delivered = true;
                break;
            }
            stream = None;
        }
        let counter = if delivered {
            &counters.tcp_sent
        } else {
            &counters.dropped
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}
