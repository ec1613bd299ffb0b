//! Our MIME parser (RFC 2045/2046): a message's parts as offsets into
//! its octets, with what BODYSTRUCTURE needs of each (type, parameters
//! with RFC 2231 continuations joined, encoding, sizes, line counts),
//! nested multiparts and message/rfc822. Tolerant: a missing boundary
//! ends the part at the end of its parent, a bad header is text/plain.
//! Works on the message as sent (CRLF line ends).

use base64ct::Encoding;
use memchr::memmem;

/// Parts nest at most this deep; deeper ones are left as opaque bodies.
pub const MAX_DEPTH: usize = 32;
/// Parts one message may have in all.
pub const MAX_PARTS: usize = 5000;

/// One part (or the message itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Part {
    /// The header, blank line included: start and end offsets.
    pub header: (usize, usize),
    /// The body.
    pub body: (usize, usize),
    /// Content-Type's type and subtype, as written (defaults lower case).
    pub kind: (String, String),
    /// Content-Type parameters.
    pub params: Vec<(String, String)>,
    /// Content-ID.
    pub id: Option<String>,
    /// Content-Description.
    pub description: Option<String>,
    /// Content-Transfer-Encoding.
    pub encoding: Option<String>,
    /// Content-MD5.
    pub md5: Option<String>,
    /// Content-Disposition and its parameters.
    pub disposition: Option<(String, Vec<(String, String)>)>,
    /// Content-Language tags.
    pub language: Vec<String>,
    /// Content-Location.
    pub location: Option<String>,
    /// Line ends in the body.
    pub lines: usize,
    /// A multipart's parts.
    pub children: Vec<Part>,
    /// A message/rfc822's message.
    pub message: Option<Box<Part>>,
}

impl Part {
    /// Calls `f` on this part and every part within it, depth first
    /// (the depth is capped at parse time: [`MAX_DEPTH`]).
    pub fn visit(&self, f: &mut dyn FnMut(&Part)) {
        f(self);
        for c in &self.children {
            c.visit(f);
        }
        if let Some(m) = &self.message {
            m.visit(f);
        }
    }

    /// True for multipart/*.
    pub fn is_multipart(&self) -> bool {
        self.kind.0.eq_ignore_ascii_case("multipart")
    }

    /// True for message/rfc822 (and message/global).
    pub fn is_message(&self) -> bool {
        self.kind.0.eq_ignore_ascii_case("message")
            && (self.kind.1.eq_ignore_ascii_case("rfc822")
                || self.kind.1.eq_ignore_ascii_case("global"))
    }

    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sub-part `i` (1-based) of this part taken as a message: a
    /// multipart's child, or the part itself.
    fn sub(&self, i: u32) -> Option<&Part> {
        if self.is_multipart() {
            self.children.get((i as usize).checked_sub(1)?)
        } else if i == 1 {
            Some(self)
        } else {
            None
        }
    }

    /// The part a section path names (`[]` is the message itself).
    pub fn find(&self, path: &[u32]) -> Option<&Part> {
        let mut cur = self;
        for (k, &i) in path.iter().enumerate() {
            cur = if k == 0 {
                self.sub(i)?
            } else if let Some(m) = &cur.message {
                m.sub(i)?
            } else if cur.is_multipart() {
                cur.children.get((i as usize).checked_sub(1)?)?
            } else {
                return None;
            };
        }
        Some(cur)
    }
}

/// Parses a whole message.
pub fn parse(msg: &[u8]) -> Part {
    let mut budget = MAX_PARTS;
    part(msg, 0, msg.len(), false, 0, &mut budget)
}

/// One part between `start` and `end`; `digest` makes the default type
/// message/rfc822 (inside multipart/digest).
fn part(
    msg: &[u8],
    start: usize,
    end: usize,
    digest: bool,
    depth: usize,
    budget: &mut usize,
) -> Part {
    *budget = budget.saturating_sub(1);
    let region = &msg[start..end];
    let header_len = header_end(region);
    let mut p = Part {
        header: (start, start + header_len),
        body: (start + header_len, end),
        ..Part::default()
    };
    p.lines = memchr::memchr_iter(b'\n', &msg[p.body.0..p.body.1]).count();
    let mut ctype = None;
    for (name, value) in fields(&msg[p.header.0..p.header.1]) {
        let value = String::from_utf8_lossy(&value).trim().to_string();
        match name.to_ascii_lowercase().as_str() {
            "content-type" => ctype = Some(value),
            "content-transfer-encoding" => {
                p.encoding =
                    value.split_whitespace().next().map(str::to_string)
            }
            "content-id" => p.id = Some(value),
            "content-description" => p.description = Some(value),
            "content-md5" => p.md5 = Some(value),
            "content-location" => p.location = Some(value),
            "content-language" => {
                p.language = value
                    .split(',')
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect()
            }
            "content-disposition" => {
                let (d, params) = split_params(&value);
                if !d.is_empty() {
                    p.disposition = Some((d, params));
                }
            }
            _ => {}
        }
    }
    let parsed = ctype.as_deref().and_then(|c| {
        let (t, params) = split_params(c);
        let (ty, sub) = t.split_once('/')?;
        let (ty, sub) = (ty.trim(), sub.trim());
        let token =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b > 32 && b < 127);
        (token(ty) && token(sub))
            .then(|| ((ty.to_string(), sub.to_string()), params))
    });
    match parsed {
        Some((kind, params)) => {
            p.kind = kind;
            p.params = params;
        }
        None if digest => {
            p.kind = ("message".into(), "rfc822".into());
        }
        None => {
            p.kind = ("text".into(), "plain".into());
            p.params = vec![("charset".into(), "us-ascii".into())];
        }
    }
    if depth >= MAX_DEPTH || *budget == 0 {
        return p;
    }
    if p.is_multipart() {
        let boundary = p.param("boundary").map(str::to_string);
        if let Some(b) = boundary.filter(|b| !b.is_empty()) {
            let digest = p.kind.1.eq_ignore_ascii_case("digest");
            for (s, e) in
                split_multipart(msg, p.body.0, p.body.1, b.as_bytes())
            {
                if *budget == 0 {
                    break;
                }
                p.children.push(part(msg, s, e, digest, depth + 1, budget));
            }
        }
        if p.children.is_empty() {
            // RFC 3501: a multipart has at least one part.
            let mut empty =
                part(msg, p.body.1, p.body.1, false, depth + 1, budget);
            empty.header = (p.body.1, p.body.1);
            p.children.push(empty);
        }
    } else if p.is_message() {
        p.message = Some(Box::new(part(
            msg,
            p.body.0,
            p.body.1,
            false,
            depth + 1,
            budget,
        )));
    }
    p
}

/// Where a header ends (after its blank line); bare LF line ends are
/// taken too, as messages from elsewhere may have them.
fn header_end(region: &[u8]) -> usize {
    if region.starts_with(b"\r\n") {
        return 2;
    }
    if region.starts_with(b"\n") {
        return 1;
    }
    let crlf = memmem::find(region, b"\r\n\r\n").map(|i| i + 4);
    let lf = memmem::find(region, b"\n\n").map(|i| i + 2);
    let crlf_lf = memmem::find(region, b"\n\r\n").map(|i| i + 3);
    [crlf, lf, crlf_lf]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(region.len())
}

/// The parts of a multipart body: ranges between `--boundary` lines,
/// each without the CRLF that belongs to the next boundary.
fn split_multipart(
    msg: &[u8],
    start: usize,
    end: usize,
    boundary: &[u8],
) -> Vec<(usize, usize)> {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let body = &msg[start..end];
    let mut parts = Vec::new();
    let mut current: Option<usize> = None;
    let mut pos = 0;
    while pos <= body.len() {
        let line_end = memchr::memchr(b'\n', &body[pos..])
            .map_or(body.len(), |i| pos + i + 1);
        let line = &body[pos..line_end];
        if line.starts_with(&delim) {
            let rest = &line[delim.len()..];
            let closing = rest.starts_with(b"--");
            let after = if closing { &rest[2..] } else { rest };
            if after.iter().all(|b| b.is_ascii_whitespace()) {
                if let Some(s) = current.take() {
                    // The CRLF before a boundary is part of the boundary.
                    let mut e = pos;
                    if e >= 2 && &body[e - 2..e] == b"\r\n" && e - 2 >= s {
                        e -= 2;
                    } else if e >= 1 && body[e - 1] == b'\n' && e > s {
                        e -= 1;
                    }
                    parts.push((start + s, start + e.max(s)));
                }
                if closing {
                    return parts;
                }
                current = Some(line_end);
            }
        }
        if line_end == body.len() {
            break;
        }
        pos = line_end;
    }
    if let Some(s) = current {
        parts.push((start + s, end));
    }
    parts
}

/// A header field's value is read this far and no further by the
/// content parsers (addresses, subjects, dates, ids, parameters): real
/// fields are far shorter, and it bounds what one field can cost.
pub const MAX_FIELD: usize = 64 * 1024;

/// A header's fields, unfolded: (name, value), each value cut at
/// [`MAX_FIELD`] octets.
pub fn fields(header: &[u8]) -> Vec<(String, Vec<u8>)> {
    fields_within(header, MAX_FIELD)
}

/// A header's fields unfolded whole, for callers that must see every
/// octet (a local `sendmail -t` reading its recipients).
pub fn fields_whole(header: &[u8]) -> Vec<(String, Vec<u8>)> {
    fields_within(header, usize::MAX)
}

/// The fields named `name` (any case), unfolded and capped as [`fields`]
/// gives them; the others are skipped, not copied (a search on one
/// field over a folder's worth of headers).
pub fn fields_named(header: &[u8], name: &str) -> Vec<(String, Vec<u8>)> {
    walk_fields(header, MAX_FIELD, |n| {
        n.trim_ascii().eq_ignore_ascii_case(name.as_bytes())
    })
}

fn fields_within(header: &[u8], cap: usize) -> Vec<(String, Vec<u8>)> {
    walk_fields(header, cap, |_| true)
}

/// The fields whose raw name `wanted` takes, each value capped at `cap`.
fn walk_fields(
    header: &[u8],
    cap: usize,
    wanted: impl Fn(&[u8]) -> bool,
) -> Vec<(String, Vec<u8>)> {
    crate::util::fault::probe("content", header);
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    // Whether the field being unfolded is one kept.
    let mut keeping = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() {
            break;
        }
        if matches!(text[0], b' ' | b'\t') {
            if let Some(last) = out.last_mut().filter(|_| keeping) {
                let room = cap.saturating_sub(last.1.len());
                last.1.extend_from_slice(&text[..text.len().min(room)]);
            }
            continue;
        }
        let Some(colon) = memchr::memchr(b':', text) else {
            continue;
        };
        keeping = wanted(&text[..colon]);
        if !keeping {
            continue;
        }
        let name = String::from_utf8_lossy(&text[..colon]).trim().to_string();
        let mut value = &text[colon + 1..];
        while value.first() == Some(&b' ') || value.first() == Some(&b'\t') {
            value = &value[1..];
        }
        out.push((name, value[..value.len().min(cap)].to_vec()));
    }
    out
}

/// `value; a=b; c="d"`: the value and its parameters, RFC 2231
/// continuations (`name*0`, `name*1*`) joined.
pub fn split_params(s: &str) -> (String, Vec<(String, String)>) {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escape = false;
    for c in s.chars() {
        if escape {
            cur.push(c);
            escape = false;
            continue;
        }
        match c {
            '\\' if quoted => escape = true,
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    items.push(cur);
    let value = items
        .first()
        .map(|v| strip_comments(v).trim().to_string())
        .unwrap_or_default();
    let mut params: Vec<(String, String)> = Vec::new();
    let mut continued: Vec<(String, u32, bool, String)> = Vec::new();
    for item in items.iter().skip(1) {
        let Some((name, v)) = item.split_once('=') else {
            continue;
        };
        let name = name.trim().to_string();
        let mut v = v.trim().to_string();
        if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
            v = v[1..v.len() - 1].to_string();
        }
        if name.is_empty() {
            continue;
        }
        // name*N or name*N*: a piece of a continued value.
        if let Some((base, rest)) = name.split_once('*') {
            let encoded = rest.ends_with('*');
            let n = rest.trim_end_matches('*');
            if let Ok(n) = n.parse::<u32>() {
                continued.push((base.to_string(), n, encoded, v));
                continue;
            }
        }
        params.push((name, v));
    }
    continued.sort_by(|a, b| {
        a.0.to_ascii_lowercase()
            .cmp(&b.0.to_ascii_lowercase())
            .then(a.1.cmp(&b.1))
    });
    let mut i = 0;
    while i < continued.len() {
        let base = continued[i].0.clone();
        let encoded = continued[i].2;
        let mut value = String::new();
        while i < continued.len() && continued[i].0.eq_ignore_ascii_case(&base)
        {
            value.push_str(&continued[i].3);
            i += 1;
        }
        let name = if encoded { format!("{base}*") } else { base };
        params.push((name, value));
    }
    (value, params)
}

fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The message with every part whose transfer encoding is `binary`
/// (or that holds NUL) re-encoded as base64 (RFC 3516 4.4).
pub fn binary_to_base64(msg: &[u8]) -> Vec<u8> {
    let tree = parse(msg);
    let mut leaves = Vec::new();
    collect_binary(msg, &tree, &mut leaves);
    if leaves.is_empty() {
        return msg.to_vec();
    }
    let mut out = Vec::with_capacity(msg.len() * 4 / 3 + 64);
    let mut pos = 0;
    for p in leaves {
        out.extend_from_slice(&msg[pos..p.header.0]);
        // The header without its transfer encoding, then base64's.
        header_without_encoding(&msg[p.header.0..p.header.1], &mut out);
        out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
        let body = &msg[p.body.0..p.body.1];
        for chunk in
            base64ct::Base64::encode_string(body).as_bytes().chunks(76)
        {
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        pos = p.body.1;
    }
    out.extend_from_slice(&msg[pos..]);
    out
}

/// A header's fields but Content-Transfer-Encoding (no blank line).
fn header_without_encoding(head: &[u8], out: &mut Vec<u8>) {
    let mut skipping = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ') | Some(b'\t')) {
            let name = line.split(|&b| b == b':').next().unwrap_or(b"");
            skipping = name
                .trim_ascii()
                .eq_ignore_ascii_case(b"content-transfer-encoding");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
}

/// A message or part (header and body) with every base64 and
/// quoted-printable leaf decoded and marked `binary` (RFC 5524 URLFETCH
/// BINARY of a message); None if some leaf's encoding is unknown.
pub fn decoded_whole(msg: &[u8], p: &Part, out: &mut Vec<u8>) -> Option<()> {
    let head = &msg[p.header.0..p.header.1];
    if let Some(m) = &p.message {
        out.extend_from_slice(head);
        return decoded_whole(msg, m, out);
    }
    if p.is_multipart() {
        out.extend_from_slice(head);
        let mut pos = p.body.0;
        for c in &p.children {
            out.extend_from_slice(&msg[pos..c.header.0]);
            decoded_whole(msg, c, out)?;
            pos = c.body.1;
        }
        out.extend_from_slice(&msg[pos..p.body.1]);
        return Some(());
    }
    let body = &msg[p.body.0..p.body.1];
    let enc = p.encoding.as_deref().unwrap_or("7bit").to_ascii_lowercase();
    if matches!(enc.as_str(), "7bit" | "8bit" | "binary") {
        out.extend_from_slice(head);
        out.extend_from_slice(body);
        return Some(());
    }
    let decoded = decode(body, Some(&enc))?;
    header_without_encoding(head, out);
    out.extend_from_slice(b"Content-Transfer-Encoding: binary\r\n\r\n");
    out.extend_from_slice(&decoded);
    Some(())
}

fn collect_binary(msg: &[u8], p: &Part, out: &mut Vec<Part>) {
    if p.is_multipart() {
        for c in &p.children {
            collect_binary(msg, c, out);
        }
        return;
    }
    if let Some(m) = &p.message {
        return collect_binary(msg, m, out);
    }
    let binary = p
        .encoding
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case("binary"))
        || msg[p.body.0..p.body.1].contains(&0);
    if binary {
        let mut leaf = p.clone();
        leaf.children.clear();
        out.push(leaf);
    }
}

/// Undoes a transfer encoding; None for one we do not know (BINARY
/// answers `UNKNOWN-CTE`).
pub fn decode(body: &[u8], encoding: Option<&str>) -> Option<Vec<u8>> {
    let enc = encoding.unwrap_or("7bit").to_ascii_lowercase();
    match enc.as_str() {
        "7bit" | "8bit" | "binary" => Some(body.to_vec()),
        "base64" => Some(base64(body)),
        "quoted-printable" => Some(quoted_printable(body)),
        _ => None,
    }
}

/// Base64, tolerant: characters outside the alphabet are skipped.
pub fn base64(data: &[u8]) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in data {
        if c == b'=' {
            break;
        }
        let Some(v) = val(c) else { continue };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Quoted-printable, tolerant: a bad escape is kept as written.
pub fn quoted_printable(data: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        if c == b' ' || c == b'\t' {
            // RFC 2045 6.7 (3): whitespace at a line's end is padding.
            let mut j = i;
            while j < data.len() && (data[j] == b' ' || data[j] == b'\t') {
                j += 1;
            }
            let at_end = j == data.len()
                || data[j..].starts_with(b"\r\n")
                || data[j] == b'\n';
            if !at_end {
                out.extend_from_slice(&data[i..j]);
            }
            i = j;
            continue;
        }
        if c != b'=' {
            out.push(c);
            i += 1;
            continue;
        }
        // A soft line break: `=` then optional spaces, then CRLF.
        let mut j = i + 1;
        while j < data.len() && (data[j] == b' ' || data[j] == b'\t') {
            j += 1;
        }
        if data[j..].starts_with(b"\r\n") {
            i = j + 2;
            continue;
        }
        if data[j..].starts_with(b"\n") {
            i = j + 1;
            continue;
        }
        match (
            data.get(i + 1).and_then(|&c| hex(c)),
            data.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            _ => {
                out.push(b'=');
                i += 1;
            }
        }
    }
    out
}

/// The header (with its blank line) and the body.
pub fn split(msg: &[u8]) -> (&[u8], &[u8]) {
    if msg.starts_with(b"\r\n") {
        return (&msg[..2], &msg[2..]);
    }
    match memchr::memmem::find(msg, b"\r\n\r\n") {
        Some(i) => (&msg[..i + 4], &msg[i + 4..]),
        None => (msg, &[]),
    }
}

/// A header value with RFC 2047 encoded words decoded. Linear in the
/// value: an encoded word's text holds no `?` and no white space, so a
/// failed candidate never makes us scan past the next one.
pub fn decode_words(v: &[u8]) -> String {
    let text = String::from_utf8_lossy(v);
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    // Text before `copied` is in `out` already.
    let mut copied = 0;
    let mut pos = 0;
    let mut last_was_word = false;
    while let Some(found) = memchr::memmem::find(&bytes[pos..], b"=?") {
        let start = pos + found;
        let Some((decoded, len)) = encoded_word(&bytes[start..]) else {
            pos = start + 2;
            continue;
        };
        // Whitespace between two encoded words is not part of the text.
        // Cut points are ASCII octets, so every slice here is whole
        // characters.
        let between = &text[copied..start];
        if !(last_was_word && between.trim().is_empty()) {
            out.push_str(between);
        }
        out.push_str(&decoded);
        pos = start + len;
        copied = pos;
        last_was_word = true;
    }
    if copied < text.len() {
        // Plain text after the last word ends the run of words.
        out.push_str(&text[copied..]);
    }
    out
}

/// `=?charset[*lang]?B|Q?text?=` at the start of `s`: the decoded text
/// and the octets taken.
fn encoded_word(s: &[u8]) -> Option<(String, usize)> {
    const MAX_CHARSET: usize = 75;
    let stop = |b: u8| b == b'?' || b.is_ascii_whitespace();
    let inner = s.strip_prefix(b"=?")?;
    let charset_len =
        inner.iter().take(MAX_CHARSET + 1).position(|&b| stop(b))?;
    if charset_len == 0 || inner[charset_len] != b'?' {
        return None;
    }
    let charset = &inner[..charset_len];
    let rest = &inner[charset_len + 1..];
    let (&enc, rest) = rest.split_first()?;
    let rest = rest.strip_prefix(b"?")?;
    let text_len = rest.iter().position(|&b| stop(b))?;
    if rest.get(text_len + 1) != Some(&b'=') || rest[text_len] != b'?' {
        return None;
    }
    let data = &rest[..text_len];
    let bytes = match enc {
        b'B' | b'b' => base64(data),
        b'Q' | b'q' => {
            let q: Vec<u8> = data
                .iter()
                .map(|&b| if b == b'_' { b' ' } else { b })
                .collect();
            quoted_printable(&q)
        }
        _ => return None,
    };
    // RFC 2231 section 5: `charset*language`.
    let charset = charset.split(|&b| b == b'*').next().unwrap_or(charset);
    let charset = std::str::from_utf8(charset).ok()?;
    let len = 2 + charset_len + 1 + 1 + 1 + text_len + 2;
    Some((to_utf8(&bytes, Some(charset)), len))
}

/// Octets in a charset to UTF-8 (unknown charsets: as UTF-8, lossy).
pub fn to_utf8(bytes: &[u8], charset: Option<&str>) -> String {
    let enc = charset
        .and_then(|c| encoding_rs::Encoding::for_label(c.trim().as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    enc.decode_without_bom_handling(bytes).0.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_named_are_the_fields_of_that_name() {
        let head = b"From: a\r\n b\r\nTo: x\r\nfrom : c\r\n\tfolded\r\nX: from\r\n\r\nFrom: body\r\n";
        let mut want = fields(head);
        want.retain(|(n, _)| n.eq_ignore_ascii_case("FROM"));
        assert_eq!(fields_named(head, "FROM"), want);
        assert_eq!(want.len(), 2);
        assert_eq!(want[1].1, b"c\tfolded");
    }

    #[test]
    fn nested_parts() {
        let msg = b"Content-Type: multipart/mixed; boundary=\"a b\"\r\n\r\n\
            preamble\r\n--a b\r\nContent-Type: text/plain\r\n\r\none\r\n\
            --a b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner\r\n\
            --a b--\r\nepilogue\r\n";
        let p = parse(msg);
        assert!(p.is_multipart());
        assert_eq!(p.children.len(), 2);
        let one = p.find(&[1]).unwrap();
        assert_eq!(&msg[one.body.0..one.body.1], b"one");
        let inner = p.find(&[2]).unwrap();
        assert!(inner.is_message());
        let body = p.find(&[2, 1]).unwrap();
        assert_eq!(&msg[body.body.0..body.body.1], b"inner");
        assert!(p.find(&[3]).is_none());
        assert!(p.find(&[1, 1]).is_none());
    }

    #[test]
    fn params_and_encodings() {
        let (v, p) = split_params(
            "attachment; filename*0*=utf-8''a%20; filename*1*=b; size=3 (c)",
        );
        assert_eq!(v, "attachment");
        assert!(p.contains(&("filename*".into(), "utf-8''a%20b".into())));
        assert_eq!(base64(b"aGVs\r\nbG8="), b"hello");
        assert_eq!(quoted_printable(b"a=3Db=\r\nc=ZZ"), b"a=bc=ZZ");
        assert_eq!(quoted_printable(b"x \t\r\ny z "), b"x\r\ny z");
    }

    #[test]
    fn broken_mime_is_tolerated() {
        for msg in [
            &b""[..],
            b"\r\n",
            b"Content-Type: multipart/mixed\r\n\r\nno boundary",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nunterminated",
            b"Content-Type: /\r\n\r\nx",
            b"no header end",
        ] {
            let p = parse(msg);
            assert!(p.body.1 <= msg.len());
        }
        let deep = "Content-Type: message/rfc822\r\n\r\n".repeat(100);
        let p = parse(deep.as_bytes());
        assert!(p.is_message());
    }
}
