//! A blocking HTTPS client for the ACME helper thread: one request per
//! connection, responses read whole (Content-Length, chunked, or to the
//! close), capped. The CA's certificate is checked against the system's
//! store, or against `acme_ca_file` alone (a test CA, IP names and all).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A response larger than this is refused.
const MAX_RESPONSE: usize = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(30);
/// A whole response must come within this, however it trickles: the
/// helper has renewals to get on with.
const RESPONSE_DEADLINE: Duration = Duration::from_secs(120);

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTPS client trusting one store.
pub struct Client {
    config: Arc<ClientConfig>,
}

impl Client {
    /// Trusting `ca_file` alone if given, else the system's store.
    pub fn new(ca_file: Option<&Path>) -> Result<Client, String> {
        let file = ca_file
            .map(Path::to_path_buf)
            .unwrap_or_else(crate::util::certs::ca_file);
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(&file)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let (added, _) = roots.add_parsable_certificates(certs.flatten());
        if added == 0 {
            return Err(format!(
                "{}: no CA certificate in it",
                file.display()
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client {
            config: Arc::new(config),
        })
    }

    /// One request: `method` on `url` (https only), with a JOSE body
    /// for POST.
    pub fn request(
        &self,
        method: &str,
        url: &str,
        body: Option<&str>,
    ) -> Result<Response, String> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("not an https URL: {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = split_authority(authority)?;
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("{authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("{authority}: no address"))?;
        let tcp = TcpStream::connect_timeout(&addr, TIMEOUT)
            .map_err(|e| format!("{authority}: {e}"))?;
        let _ = tcp.set_read_timeout(Some(TIMEOUT));
        let _ = tcp.set_write_timeout(Some(TIMEOUT));
        let name = ServerName::try_from(host.clone())
            .map_err(|e| format!("{host}: {e}"))?;
        let tls = ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| e.to_string())?;
        let mut stream = StreamOwned::new(tls, tcp);
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: postling\r\nConnection: close\r\n"
        );
        if let Some(b) = body {
            head.push_str(&format!("Content-Type: application/jose+json\r\nContent-Length: {}\r\n", b.len()));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .map_err(|e| format!("{authority}: {e}"))?;
        if let Some(b) = body {
            stream
                .write_all(b.as_bytes())
                .map_err(|e| format!("{authority}: {e}"))?;
        }
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let started = Instant::now();
        loop {
            let left = RESPONSE_DEADLINE.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(format!("{authority}: no whole response in time"));
            }
            let _ = stream.sock.set_read_timeout(Some(left.min(TIMEOUT)));
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                // A peer that closes without close_notify: what came is kept.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    break;
                }
                Err(e) => return Err(format!("{authority}: {e}")),
            }
            if raw.len() > MAX_RESPONSE {
                return Err(format!("{authority}: response too large"));
            }
        }
        parse_response(&raw, method == "HEAD").ok_or_else(|| {
            format!("{authority}: a response that made no sense")
        })
    }
}

fn split_authority(authority: &str) -> Result<(String, u16), String> {
    // [v6]:port, host:port, host.
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("bad URL")?;
        let port = after
            .strip_prefix(':')
            .map_or(Ok(443), str::parse)
            .map_err(|_| "bad port")?;
        return Ok((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => {
            Ok((h.to_string(), p.parse().map_err(|_| "bad port")?))
        }
        None => Ok((authority.to_string(), 443)),
    }
}

/// Status line, header fields, and the body (de-chunked).
fn parse_response(raw: &[u8], head_only: bool) -> Option<Response> {
    let end = memchr::memmem::find(raw, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    if head_only {
        return Some(Response {
            status,
            headers,
            body: Vec::new(),
        });
    }
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding")
            && v.eq_ignore_ascii_case("chunked")
    });
    let body = match chunked {
        true => dechunk(rest)?,
        false => {
            let length = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse::<usize>().ok());
            match length {
                Some(n) => rest.get(..n)?.to_vec(),
                None => rest.to_vec(),
            }
        }
    };
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = memchr::memmem::find(rest, b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size =
            usize::from_str_radix(size_text.split(';').next()?.trim(), 16)
                .ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        let r = parse_response(b"HTTP/1.1 201 Created\r\nLocation: https://a/1\r\nReplay-Nonce: n\r\nContent-Length: 2\r\n\r\n{}", false).unwrap();
        assert_eq!(
            (r.status, r.header("location"), &r.body[..]),
            (201, Some("https://a/1"), &b"{}"[..])
        );
        let c = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n", false).unwrap();
        assert_eq!(c.body, b"abcde");
        assert!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                false
            )
            .is_none()
        );
        let head = parse_response(
            b"HTTP/1.1 200 OK\r\nReplay-Nonce: x\r\nContent-Length: 9\r\n\r\n",
            true,
        )
        .unwrap();
        assert_eq!(head.header("replay-nonce"), Some("x"));
        assert_eq!(
            split_authority("[::1]:14000").unwrap(),
            ("::1".into(), 14000)
        );
        assert_eq!(
            split_authority("acme.test").unwrap(),
            ("acme.test".into(), 443)
        );
    }
}
