//! Reading a command's arguments in place (RFC 9051 9, the formal
//! syntax): atoms, quoted strings, literals, numbers, parenthesised
//! lists. Strings come back borrowed from the command buffer unless a
//! quoted string held escapes.

use std::borrow::Cow;

use super::frame::literal_at_end;

/// Lists may nest this deep (search keys, BODY sections).
pub const MAX_DEPTH: usize = 16;

/// Why a command could not be read: the text after `BAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad(pub &'static str);

/// A cursor over one framed command.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    buf: &'a [u8],
    pos: usize,
    /// List nesting, against [`MAX_DEPTH`].
    pub depth: usize,
}

fn is_atom_char(b: u8) -> bool {
    b > 0x20
        && b < 0x7f
        && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// Characters of a LIST pattern beyond an astring's.
fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

impl<'a> Args<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Args<'a> {
        Args {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    /// The next octet, if any.
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// True at the CRLF that ends the command.
    pub fn at_end(&self) -> bool {
        matches!(self.peek(), None | Some(b'\r') | Some(b'\n'))
    }

    /// Requires the end of the command.
    pub fn end(&self) -> Result<(), Bad> {
        if self.at_end() {
            Ok(())
        } else {
            Err(Bad("unexpected extra arguments"))
        }
    }

    /// Requires one space.
    pub fn sp(&mut self) -> Result<(), Bad> {
        self.byte(b' ').then_some(()).ok_or(Bad("expected a space"))
    }

    /// Takes `b` if it is next.
    pub fn byte(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Takes `word` (any case) if it is next.
    pub fn keyword(&mut self, word: &str) -> bool {
        let end = self.pos + word.len();
        let ok = self
            .buf
            .get(self.pos..end)
            .is_some_and(|s| s.eq_ignore_ascii_case(word.as_bytes()));
        if ok {
            self.pos = end;
        }
        ok
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    /// A command, attribute or search-key name: letters, digits, dots.
    pub fn name(&mut self) -> &'a [u8] {
        self.take_while(|b| {
            b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
        })
    }

    /// An atom.
    pub fn atom(&mut self) -> Result<&'a [u8], Bad> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return Err(Bad("expected an atom"));
        }
        Ok(a)
    }

    /// A tag: any astring char but `+`.
    pub fn tag(&mut self) -> Result<&'a [u8], Bad> {
        let t = self.take_while(|b| is_astring_char(b) && b != b'+');
        if t.is_empty() {
            return Err(Bad("expected a tag"));
        }
        Ok(t)
    }

    /// A number (`number` or `number64`).
    pub fn number(&mut self) -> Result<u64, Bad> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() || digits.len() > 19 {
            return Err(Bad("expected a number"));
        }
        std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(Bad("number out of range"))
    }

    /// A non-zero 32-bit number.
    pub fn nz_number(&mut self) -> Result<u32, Bad> {
        match u32::try_from(self.number()?) {
            Ok(0) | Err(_) => Err(Bad("expected a non-zero number")),
            Ok(n) => Ok(n),
        }
    }

    /// A quoted string or a literal.
    pub fn string(&mut self) -> Result<Cow<'a, [u8]>, Bad> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal().map(Cow::Borrowed),
            Some(b'~') if self.buf.get(self.pos + 1) == Some(&b'{') => {
                self.literal().map(Cow::Borrowed)
            }
            _ => Err(Bad("expected a string")),
        }
    }

    /// An astring: atom-ish characters or a string.
    pub fn astring(&mut self) -> Result<Cow<'a, [u8]>, Bad> {
        let literal8 = self.buf.get(self.pos..self.pos + 2) == Some(b"~{");
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            Some(b'~') if literal8 => self.string(),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() {
                    return Err(Bad("expected a string"));
                }
                Ok(Cow::Borrowed(a))
            }
        }
    }

    /// NIL or a string.
    pub fn nstring(&mut self) -> Result<Option<Cow<'a, [u8]>>, Bad> {
        if self.keyword("NIL") {
            return Ok(None);
        }
        self.string().map(Some)
    }

    /// A LIST pattern: wildcards allowed unquoted.
    pub fn list_mailbox(&mut self) -> Result<Cow<'a, [u8]>, Bad> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    return Err(Bad("expected a mailbox pattern"));
                }
                Ok(Cow::Borrowed(a))
            }
        }
    }

    fn quoted(&mut self) -> Result<Cow<'a, [u8]>, Bad> {
        self.pos += 1;
        let start = self.pos;
        let mut owned: Option<Vec<u8>> = None;
        loop {
            let Some(b) = self.peek() else {
                return Err(Bad("unterminated quoted string"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(e @ (b'"' | b'\\')) = self.peek() else {
                        return Err(Bad("bad escape in quoted string"));
                    };
                    self.pos += 1;
                    owned
                        .get_or_insert_with(|| {
                            self.buf[start..self.pos - 2].to_vec()
                        })
                        .push(e);
                }
                b'\r' | b'\n' | 0 => {
                    return Err(Bad("line end in quoted string"));
                }
                _ => {
                    if let Some(o) = owned.as_mut() {
                        o.push(b);
                    }
                }
            }
        }
        Ok(match owned {
            Some(o) => Cow::Owned(o),
            None => Cow::Borrowed(&self.buf[start..self.pos - 1]),
        })
    }

    /// A literal: its announcement, CRLF, then its octets.
    pub fn literal(&mut self) -> Result<&'a [u8], Bad> {
        let rest = &self.buf[self.pos..];
        let eol = memchr::memchr(b'\n', rest).ok_or(Bad("bad literal"))?;
        let line = rest[..eol].strip_suffix(b"\r").unwrap_or(&rest[..eol]);
        let lit = literal_at_end(line)
            .filter(|l| l.at == 0)
            .ok_or(Bad("bad literal"))?;
        let start = self.pos + eol + 1;
        let end = start
            .checked_add(usize::try_from(lit.len).map_err(|_| Bad("big"))?)
            .filter(|&e| e <= self.buf.len())
            .ok_or(Bad("literal cut short"))?;
        let data = &self.buf[start..end];
        if !lit.binary && data.contains(&0) {
            return Err(Bad("NUL in a literal"));
        }
        self.pos = end;
        Ok(data)
    }

    /// `(` ... `)` with items read by `item`, separated by spaces.
    pub fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Args<'a>) -> Result<T, Bad>,
    ) -> Result<Vec<T>, Bad> {
        if !self.byte(b'(') {
            return Err(Bad("expected a list"));
        }
        let mut items = Vec::new();
        if self.byte(b')') {
            return Ok(items);
        }
        loop {
            items.push(item(self)?);
            if self.byte(b')') {
                return Ok(items);
            }
            self.sp()?;
        }
    }

    /// Enters a nested list, checking the depth.
    pub fn enter(&mut self) -> Result<(), Bad> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Bad("nested too deep"));
        }
        Ok(())
    }

    /// Leaves a nested list.
    pub fn leave(&mut self) {
        self.depth -= 1;
    }

    /// A flag: `\Word` or a keyword atom.
    pub fn flag(&mut self) -> Result<&'a [u8], Bad> {
        let start = self.pos;
        self.byte(b'\\');
        self.atom()?;
        Ok(&self.buf[start..self.pos])
    }

    /// The octets from the cursor to the end of the command line.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Moves past `n` octets.
    pub fn skip(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    /// The whole command.
    pub fn buffer(&self) -> &'a [u8] {
        self.buf
    }

    /// Where the cursor is.
    pub fn position(&self) -> usize {
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let mut a = Args::new(b"\"a\\\"b\" atom {3}\r\nx y NIL\r\n");
        assert_eq!(&*a.astring().unwrap(), b"a\"b");
        a.sp().unwrap();
        assert_eq!(&*a.astring().unwrap(), b"atom");
        a.sp().unwrap();
        assert_eq!(&*a.astring().unwrap(), b"x y");
        a.sp().unwrap();
        assert_eq!(a.nstring().unwrap(), None);
        a.end().unwrap();
    }

    #[test]
    fn nasty_strings() {
        for bad in [
            &b"\"abc"[..],
            b"\"a\\b\"",
            b"{5}\r\nab",
            b"{2}\r\na\0",
            b"(",
            b"",
            b"\"a\r\nb\"",
        ] {
            let mut a = Args::new(bad);
            assert!(a.astring().is_err(), "{bad:?}");
        }
        assert!(Args::new(b"0").nz_number().is_err());
        assert!(Args::new(b"4294967296").nz_number().is_err());
        assert!(Args::new(b"99999999999999999999").number().is_err());
    }

    #[test]
    fn lists() {
        let mut a = Args::new(b"(\\Seen $Junk) ()");
        let l = a.list(|a| a.flag()).unwrap();
        assert_eq!(l, vec![&b"\\Seen"[..], b"$Junk"]);
        a.sp().unwrap();
        assert!(a.list(|a| a.flag()).unwrap().is_empty());
        assert!(Args::new(b"(a").list(|a| a.atom()).is_err());
    }
}
