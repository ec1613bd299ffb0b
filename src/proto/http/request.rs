//! HTTP/1.1 requests (RFC 9112), parsed in place over the connection's
//! buffer: the request line, the header fields we act on, and a body
//! sized by Content-Length. Small on purpose: the listener serves a few
//! pages to mail clients and monitors, so everything past a few KiB, or
//! anything we do not serve (chunked bodies, folded fields), is refused
//! with the status that says why.

use memchr::memmem;

/// The request line and header fields together, at most.
pub const MAX_HEAD: usize = 8 * 1024;
/// The request target, at most.
pub const MAX_TARGET: usize = 2048;
/// Header fields, at most.
pub const MAX_FIELDS: usize = 64;
/// A body, at most (autodiscover's request is a few hundred octets).
pub const MAX_BODY: usize = 16 * 1024;

/// A parsed request; its parts borrow the input.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a [u8],
    /// The path, without the query.
    pub path: &'a [u8],
    /// After `?`, if any.
    pub query: &'a [u8],
    /// The Host field (lower-cased by the caller as needed).
    pub host: &'a [u8],
    pub body: &'a [u8],
    /// The client asked to close after this response (or spoke 1.0).
    pub close: bool,
}

/// What the input holds so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Not a whole request yet (and not too big yet).
    Partial,
    /// A request, and the octets it took.
    Done(Request<'a>, usize),
    /// A request we refuse: the status and its reason phrase.
    Bad(u16),
}

/// Parses the request at the start of `input`.
pub fn parse(input: &[u8]) -> Parsed<'_> {
    let window = &input[..input.len().min(MAX_HEAD + 4)];
    let Some(end) = memmem::find(window, b"\r\n\r\n") else {
        if input.len() > MAX_HEAD {
            return Parsed::Bad(431);
        }
        // A request line too long can be told before its end.
        if memchr::memchr(b'\n', input).is_none()
            && input.len() > MAX_TARGET + 32
        {
            return Parsed::Bad(414);
        }
        return Parsed::Partial;
    };
    let head = &input[..end];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let Some(first) = lines.next() else {
        return Parsed::Bad(400);
    };
    let (method, target, minor) = match request_line(first) {
        Ok(parts) => parts,
        Err(status) => return Parsed::Bad(status),
    };
    let mut fields = Fields::default();
    for (n, line) in lines.enumerate() {
        if n >= MAX_FIELDS {
            return Parsed::Bad(431);
        }
        if let Err(status) = fields.add(line) {
            return Parsed::Bad(status);
        }
    }
    if fields.chunked {
        // RFC 9112 6.1: a coding we do not take is 501.
        return Parsed::Bad(501);
    }
    let host = match (minor, fields.host) {
        (_, Some(Some(h))) => h,
        // RFC 9112 3.2: HTTP/1.1 without exactly one Host is 400.
        (1, _) | (_, Some(None)) => return Parsed::Bad(400),
        (_, None) => &b""[..],
    };
    let length = fields.length.unwrap_or(0);
    if length > MAX_BODY {
        return Parsed::Bad(413);
    }
    let start = end + 4;
    if input.len() < start + length {
        return Parsed::Partial;
    }
    let (path, query) = match memchr::memchr(b'?', target) {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &b""[..]),
    };
    let request = Request {
        method,
        path,
        query,
        host,
        body: &input[start..start + length],
        close: minor == 0 || fields.close,
    };
    Parsed::Done(request, start + length)
}

/// `METHOD SP origin-form SP HTTP/1.x`: the method, the target and x.
fn request_line(line: &[u8]) -> Result<(&[u8], &[u8], u8), u16> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(400);
    }
    if target.len() > MAX_TARGET {
        return Err(414);
    }
    if target.first() != Some(&b'/')
        || !target.iter().all(|&b| b.is_ascii_graphic())
    {
        return Err(400);
    }
    let minor = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        v if v.starts_with(b"HTTP/") => return Err(505),
        _ => return Err(400),
    };
    Ok((method, target, minor))
}

/// The header fields we act on.
#[derive(Default)]
struct Fields<'a> {
    /// None: no Host; Some(None): more than one.
    host: Option<Option<&'a [u8]>>,
    length: Option<usize>,
    chunked: bool,
    close: bool,
}

impl<'a> Fields<'a> {
    fn add(&mut self, line: &'a [u8]) -> Result<(), u16> {
        // RFC 9112 5.2: obsolete line folding is refused, as is white
        // space before the colon (5.1).
        let colon = memchr::memchr(b':', line).ok_or(400u16)?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(400);
        }
        let value = line[colon + 1..].trim_ascii();
        if value.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(400);
        }
        if name.eq_ignore_ascii_case(b"host") {
            self.host = Some(match self.host {
                None => Some(value),
                Some(_) => None,
            });
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n = length(value).ok_or(400u16)?;
            // Repeated, it must say the same (RFC 9112 6.3).
            if self.length.is_some_and(|l| l != n) {
                return Err(400);
            }
            self.length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            self.close |= value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
        Ok(())
    }
}

/// A Content-Length: digits only, and not absurd.
fn length(value: &[u8]) -> Option<usize> {
    if value.is_empty()
        || value.len() > 9
        || !value.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// RFC 9110 5.6.2's token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The value of `name` in a query string (`a=1&b=2`), percent-decoded
/// (`+` as a space); None if absent or not UTF-8.
pub fn query_value(query: &[u8], name: &str) -> Option<String> {
    for pair in query.split(|&b| b == b'&') {
        let (k, v) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        if k == name.as_bytes() {
            return String::from_utf8(percent_decode(v)).ok();
        }
    }
    None
}

fn percent_decode(v: &[u8]) -> Vec<u8> {
    let hex = |b: Option<&u8>| {
        b.and_then(|&b| (b as char).to_digit(16)).map(|d| d as u8)
    };
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match (v[i], hex(v.get(i + 1)), hex(v.get(i + 2))) {
            (b'%', Some(high), Some(low)) => {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
            (b'+', _, _) => out.push(b' '),
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests;
