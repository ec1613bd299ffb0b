//! The milter protocol's packets (Sendmail's libmilter, version 6):
//! a 32-bit big-endian length, a command or response letter, its data.
//! [`Reader`] takes a milter's bytes as they come and gives whole
//! packets, refusing one longer than [`MAX_PACKET`]; [`Response::parse`]
//! reads one response. No I/O here.

/// The longest packet a milter may send us: a body replacement chunk
/// is at most 64 KiB in libmilter, a header far less.
pub const MAX_PACKET: usize = 1024 * 1024;

/// One packet: its letter and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub cmd: u8,
    pub data: Vec<u8>,
}

/// Encodes a packet.
pub fn packet(cmd: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + data.len());
    out.extend_from_slice(&(data.len() as u32 + 1).to_be_bytes());
    out.push(cmd);
    out.extend_from_slice(data);
    out
}

/// A milter's bytes in, whole packets out.
#[derive(Debug, Default)]
pub struct Reader {
    buf: Vec<u8>,
    /// Where the packets not yet taken start: taking one moves this,
    /// not the bytes after it.
    start: usize,
}

/// The milter broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken(pub &'static str);

impl Reader {
    /// More bytes from the milter.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole packet, if one is in.
    pub fn packet(&mut self) -> Result<Option<Packet>, Broken> {
        let buf = &self.buf[self.start..];
        let Some(len) = buf.get(..4) else {
            return Ok(None);
        };
        let len =
            u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len == 0 {
            return Err(Broken("empty packet"));
        }
        if len > MAX_PACKET {
            return Err(Broken("packet too long"));
        }
        if buf.len() < 4 + len {
            return Ok(None);
        }
        let cmd = buf[4];
        let data = buf[5..4 + len].to_vec();
        self.start += 4 + len;
        Ok(Some(Packet { cmd, data }))
    }
}

/// What a milter answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Options: version, actions, protocol steps it does without.
    Negotiate {
        version: u32,
        actions: u32,
        protocol: u32,
    },
    Continue,
    /// Accept the message: ask this milter nothing more about it.
    Accept,
    Reject,
    Tempfail,
    Discard,
    /// Reject or tempfail with this reply (`550 5.7.1 text`).
    ReplyCode(String),
    /// Send no more of the body.
    Skip,
    /// Still working: wait on.
    Progress,
    AddHeader {
        name: String,
        value: String,
    },
    /// Insert at `index` (0: first).
    InsertHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// Change the `index`th (from 1) field of this name; empty: delete.
    ChangeHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// A piece of the new body.
    ReplaceBody(Vec<u8>),
    /// Into quarantine (Junk here), and why.
    Quarantine(String),
    /// Something we did not offer (recipients, sender changes).
    Unsupported(u8),
}

/// A NUL-terminated string at the start of `data`, and the rest.
fn cstr(data: &[u8]) -> Result<(String, &[u8]), Broken> {
    let end = memchr::memchr(0, data).ok_or(Broken("string without NUL"))?;
    Ok((
        String::from_utf8_lossy(&data[..end]).into_owned(),
        &data[end + 1..],
    ))
}

fn be32(data: &[u8]) -> Result<(u32, &[u8]), Broken> {
    let b = data.get(..4).ok_or(Broken("short packet"))?;
    Ok((u32::from_be_bytes([b[0], b[1], b[2], b[3]]), &data[4..]))
}

/// A header name and value.
fn field(data: &[u8]) -> Result<(String, String), Broken> {
    let (name, rest) = cstr(data)?;
    let (value, _) = cstr(rest)?;
    if name.is_empty()
        || name.bytes().any(|b| !(33..=126).contains(&b) || b == b':')
    {
        return Err(Broken("bad header name"));
    }
    Ok((name, value))
}

impl Response {
    /// Reads one response packet.
    pub fn parse(p: &Packet) -> Result<Response, Broken> {
        let d = &p.data[..];
        Ok(match p.cmd {
            b'O' => {
                let (version, d) = be32(d)?;
                let (actions, d) = be32(d)?;
                let (protocol, _) = be32(d)?;
                Response::Negotiate {
                    version,
                    actions,
                    protocol,
                }
            }
            b'c' => Response::Continue,
            b'a' => Response::Accept,
            b'r' => Response::Reject,
            b't' => Response::Tempfail,
            b'd' => Response::Discard,
            b's' => Response::Skip,
            b'p' => Response::Progress,
            b'y' => Response::ReplyCode(cstr(d)?.0),
            b'h' => {
                let (name, value) = field(d)?;
                Response::AddHeader { name, value }
            }
            b'i' | b'm' => {
                let (index, rest) = be32(d)?;
                let (name, value) = field(rest)?;
                match p.cmd {
                    b'i' => Response::InsertHeader { index, name, value },
                    _ => Response::ChangeHeader { index, name, value },
                }
            }
            b'b' => Response::ReplaceBody(d.to_vec()),
            b'q' => {
                Response::Quarantine(cstr(d).map(|s| s.0).unwrap_or_default())
            }
            other => Response::Unsupported(other),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_in_pieces() {
        let mut bytes = packet(b'c', b"");
        bytes.extend(packet(b'h', b"X-Spam\0Yes\0"));
        let mut r = Reader::default();
        let mut got = Vec::new();
        for b in &bytes {
            r.feed(&[*b]);
            while let Some(p) = r.packet().unwrap() {
                got.push(Response::parse(&p).unwrap());
            }
        }
        assert_eq!(
            got,
            [
                Response::Continue,
                Response::AddHeader {
                    name: "X-Spam".into(),
                    value: "Yes".into()
                }
            ]
        );
    }

    #[test]
    fn bad_packets_are_refused() {
        let mut r = Reader::default();
        r.feed(&0u32.to_be_bytes());
        assert_eq!(r.packet(), Err(Broken("empty packet")));
        let mut r = Reader::default();
        r.feed(&(MAX_PACKET as u32 + 1).to_be_bytes());
        assert_eq!(r.packet(), Err(Broken("packet too long")));
        for (cmd, data) in [
            (b'y', &b"550 no nul"[..]),
            (b'h', b"Name\0"),
            (b'h', b"Bad Name\0v\0"),
            (b'm', b"\0\0"),
            (b'O', b"\0\0\0\x06"),
        ] {
            let p = Packet {
                cmd,
                data: data.to_vec(),
            };
            assert!(Response::parse(&p).is_err(), "{}", cmd as char);
        }
        let p = Packet {
            cmd: b'+',
            data: b"<x@y>\0".to_vec(),
        };
        assert_eq!(Response::parse(&p), Ok(Response::Unsupported(b'+')));
    }
}
