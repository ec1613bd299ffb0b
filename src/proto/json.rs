//! A small JSON reader (RFC 8259) for the few documents we are sent:
//! ACME's directory, accounts, orders and challenges. Linear, with caps
//! on size and depth; numbers are kept as text (we only read strings,
//! booleans and structure).

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number as written.
    Number(String),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// Documents larger than this are refused.
pub const MAX_SIZE: usize = 1 << 20;
/// Nesting deeper than this is refused.
const MAX_DEPTH: usize = 32;

impl Value {
    /// An object's member.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => {
                members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// A string's text.
    pub fn str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// An array's items (none for anything else).
    pub fn items(&self) -> &[Value] {
        match self {
            Value::Array(items) => items,
            _ => &[],
        }
    }
}

/// Parses a whole document.
pub fn parse(text: &[u8]) -> Result<Value, &'static str> {
    if text.len() > MAX_SIZE {
        return Err("JSON document too large");
    }
    let mut p = Parser { s: text, i: 0 };
    let v = p.value(0)?;
    p.space();
    match p.i == text.len() {
        true => Ok(v),
        false => Err("text after the JSON value"),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn space(&mut self) {
        while self.s.get(self.i).is_some_and(|b| b" \t\r\n".contains(b)) {
            self.i += 1;
        }
    }

    fn eat(&mut self, word: &[u8]) -> bool {
        let ok = self.s[self.i..].starts_with(word);
        if ok {
            self.i += word.len();
        }
        ok
    }

    fn value(&mut self, depth: usize) -> Result<Value, &'static str> {
        if depth > MAX_DEPTH {
            return Err("JSON nested too deep");
        }
        self.space();
        match self.s.get(self.i) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') if self.eat(b"true") => Ok(Value::Bool(true)),
            Some(b'f') if self.eat(b"false") => Ok(Value::Bool(false)),
            Some(b'n') if self.eat(b"null") => Ok(Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err("bad JSON value"),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, &'static str> {
        self.i += 1;
        let mut members = Vec::new();
        self.space();
        if self.eat(b"}") {
            return Ok(Value::Object(members));
        }
        loop {
            self.space();
            if self.s.get(self.i) != Some(&b'"') {
                return Err("JSON object key is not a string");
            }
            let key = self.string()?;
            self.space();
            if !self.eat(b":") {
                return Err("JSON object without a colon");
            }
            let value = self.value(depth + 1)?;
            members.push((key, value));
            self.space();
            if self.eat(b"}") {
                return Ok(Value::Object(members));
            }
            if !self.eat(b",") {
                return Err("JSON object without a comma");
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, &'static str> {
        self.i += 1;
        let mut items = Vec::new();
        self.space();
        if self.eat(b"]") {
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.space();
            if self.eat(b"]") {
                return Ok(Value::Array(items));
            }
            if !self.eat(b",") {
                return Err("JSON array without a comma");
            }
        }
    }

    fn number(&mut self) -> Result<Value, &'static str> {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|b| b"+-.eE0123456789".contains(b))
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i])
            .map_err(|_| "bad number")?;
        text.parse::<f64>().map_err(|_| "bad JSON number")?;
        Ok(Value::Number(text.to_string()))
    }

    fn string(&mut self) -> Result<String, &'static str> {
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.i) else {
                return Err("JSON string not closed");
            };
            self.i += 1;
            match b {
                b'"' => {
                    return String::from_utf8(out)
                        .map_err(|_| "JSON string not UTF-8");
                }
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err("JSON string not closed");
                    };
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.escaped()?,
                        _ => return Err("bad JSON escape"),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err("control character in a JSON string"),
                _ => out.push(b),
            }
        }
    }

    /// `\uXXXX`, with a surrogate pair's second half.
    fn escaped(&mut self) -> Result<char, &'static str> {
        let first = self.hex4()?;
        if (0xd800..0xdc00).contains(&first) {
            if !self.eat(b"\\u") {
                return Err("lone JSON surrogate");
            }
            let second = self.hex4()?;
            if !(0xdc00..0xe000).contains(&second) {
                return Err("bad JSON surrogate pair");
            }
            let c = 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
            return char::from_u32(c).ok_or("bad JSON escape");
        }
        char::from_u32(first).ok_or("lone JSON surrogate")
    }

    fn hex4(&mut self) -> Result<u32, &'static str> {
        let digits =
            self.s.get(self.i..self.i + 4).ok_or("short JSON escape")?;
        let text =
            std::str::from_utf8(digits).map_err(|_| "bad JSON escape")?;
        let n =
            u32::from_str_radix(text, 16).map_err(|_| "bad JSON escape")?;
        self.i += 4;
        Ok(n)
    }
}

/// A string as JSON writes it, quotes included.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents() {
        let v = parse(br#" {"newNonce": "https://a/nonce", "meta": {"termsOfService": "x"},
            "n": -1.5e3, "ok": true, "list": [1, "\u00e9\ud83d\ude00", null, false], "e": {}} "#)
        .unwrap();
        assert_eq!(
            v.get("newNonce").and_then(Value::str),
            Some("https://a/nonce")
        );
        assert_eq!(
            v.get("meta")
                .and_then(|m| m.get("termsOfService"))
                .and_then(Value::str),
            Some("x")
        );
        assert_eq!(v.get("list").unwrap().items()[1].str(), Some("é😀"));
        assert_eq!(v.get("ok"), Some(&Value::Bool(true)));
        assert_eq!(
            parse(quote("a\"b\\c\n").as_bytes()).unwrap(),
            Value::String("a\"b\\c\n".into())
        );
    }

    #[test]
    fn refused() {
        for bad in [
            &b"{"[..],
            b"[1,]",
            b"{\"a\" 1}",
            b"\"\\ud800\"",
            b"01x",
            b"[] []",
            b"\"a\x01\"",
            b"tru",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
