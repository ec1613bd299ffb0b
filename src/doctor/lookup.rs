//! Our resolver (`proto::dns::resolver`), driven one question at a time
//! with blocking sockets: `postling doctor` is a command, not the loop,
//! and asks through the same code the server does.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::proto::dns::cache::Found;
use crate::proto::dns::resolver::{Event, Failure, Resolver};
use crate::proto::dns::wire::Qtype;

/// A resolver and its clock.
pub struct Lookup {
    resolver: Resolver,
    start: Instant,
}

impl Lookup {
    pub fn new(servers: Vec<SocketAddr>) -> Lookup {
        Lookup {
            resolver: Resolver::new(servers),
            start: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The answer for `name` and `qtype`, after the resolver's own
    /// retries and deadlines.
    pub fn ask(&mut self, name: &str, qtype: Qtype) -> Result<Found, Failure> {
        let now = self.now();
        let (key, mut events) = self.resolver.lookup(name, qtype, now);
        // The socket of the try under way: (server, UDP or TCP).
        let mut asking: Option<(SocketAddr, Channel)> = None;
        loop {
            for event in events.drain(..) {
                match event {
                    Event::Done { key: k, result } if k == key => {
                        return result;
                    }
                    Event::Done { .. } => {}
                    Event::Send {
                        server, bytes, tcp, ..
                    } => {
                        asking = Channel::open(server, &bytes, tcp)
                            .map(|c| (server, c));
                    }
                }
            }
            let now = self.now();
            let deadline = self.resolver.next_deadline().unwrap_or(now + 1000);
            let wait =
                Duration::from_millis(deadline.saturating_sub(now).max(1));
            if asking.is_none() {
                std::thread::sleep(wait);
            }
            let got =
                asking.as_mut().map(|(server, c)| (*server, c.read(wait)));
            let now = self.now();
            events = match got {
                Some((from, Ok(bytes))) => {
                    self.resolver.received(key, from, &bytes, now)
                }
                Some((_, Err(Wait::Refused))) => {
                    self.resolver.refused(key, now)
                }
                _ => self.resolver.expire(now),
            };
        }
    }
}

enum Wait {
    Timeout,
    Refused,
}

/// One try's socket.
enum Channel {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Channel {
    fn open(server: SocketAddr, bytes: &[u8], tcp: bool) -> Option<Channel> {
        if tcp {
            let mut s =
                TcpStream::connect_timeout(&server, Duration::from_secs(5))
                    .ok()?;
            let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(bytes);
            s.write_all(&framed).ok()?;
            return Some(Channel::Tcp(s));
        }
        let local: SocketAddr = match server {
            SocketAddr::V4(_) => "0.0.0.0:0".parse().ok()?,
            SocketAddr::V6(_) => "[::]:0".parse().ok()?,
        };
        let s = UdpSocket::bind(local).ok()?;
        s.connect(server).ok()?;
        s.send(bytes).ok()?;
        Some(Channel::Udp(s))
    }

    fn read(&mut self, wait: Duration) -> Result<Vec<u8>, Wait> {
        match self {
            Channel::Udp(s) => {
                let _ = s.set_read_timeout(Some(wait));
                let mut buf = vec![0u8; 4096];
                match s.recv(&mut buf) {
                    Ok(n) => {
                        buf.truncate(n);
                        Ok(buf)
                    }
                    Err(e)
                        if e.kind()
                            == std::io::ErrorKind::ConnectionRefused =>
                    {
                        Err(Wait::Refused)
                    }
                    Err(_) => Err(Wait::Timeout),
                }
            }
            Channel::Tcp(s) => {
                let _ = s.set_read_timeout(Some(wait));
                let mut len = [0u8; 2];
                s.read_exact(&mut len).map_err(|_| Wait::Timeout)?;
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                s.read_exact(&mut buf).map_err(|_| Wait::Timeout)?;
                Ok(buf)
            }
        }
    }
}
