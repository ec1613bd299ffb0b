//! HTML to words, for the filter: text outside tags with the common
//! entities decoded, `<script>` and `<style>` contents left out, and of
//! the markup only what tells spam from ham (the tags used, the links'
//! hosts). One pass, no tree: a stranger's nesting costs nothing.

/// What one HTML text gave.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stripped {
    /// The visible text, one space where a tag was.
    pub text: String,
    /// Tag names as written, lower case (each time one appears).
    pub tags: Vec<String>,
    /// `href` and `src` values.
    pub links: Vec<String>,
}

/// Tag names kept at most per text: enough to show the markup's style.
const MAX_TAGS: usize = 200;
/// Links kept at most per text.
const MAX_LINKS: usize = 100;
/// A tag is read this far for its attributes; the rest is skipped.
const MAX_TAG: usize = 2048;

/// Strips `html`.
pub fn strip(html: &str) -> Stripped {
    let mut out = Stripped::default();
    let bytes = html.as_bytes();
    let mut at = 0;
    // Inside <script> or <style>: text up to its closing tag is code.
    let mut hidden: Option<&'static str> = None;
    while at < bytes.len() {
        let Some(lt) = memchr::memchr(b'<', &bytes[at..]).map(|i| at + i)
        else {
            if hidden.is_none() {
                entities(&html[at..], &mut out.text);
            }
            break;
        };
        if hidden.is_none() {
            entities(&html[at..lt], &mut out.text);
        }
        if bytes[lt..].starts_with(b"<!--") {
            at = memchr::memmem::find(&bytes[lt + 4..], b"-->")
                .map_or(bytes.len(), |i| lt + 4 + i + 3);
            continue;
        }
        // The tag runs to its `>`, or (unclosed) to the end; both are
        // character boundaries, `<` and `>` being ASCII.
        let gt = memchr::memchr(b'>', &bytes[lt..]).map(|i| lt + i);
        let tag = &html[lt + 1..gt.unwrap_or(bytes.len())];
        let end = gt.map_or(bytes.len(), |g| g + 1);
        let (name, closing) = tag_name(tag);
        match hidden {
            Some(h) if closing && name == h => hidden = None,
            Some(_) => {}
            None => {
                out.text.push(' ');
                if !closing && (name == "script" || name == "style") {
                    hidden = Some(if name == "script" {
                        "script"
                    } else {
                        "style"
                    });
                }
                if !name.is_empty() && !closing && out.tags.len() < MAX_TAGS {
                    out.tags.push(name.to_string());
                }
                if out.links.len() < MAX_LINKS {
                    links(
                        &tag[..floor_boundary(tag, MAX_TAG)],
                        &mut out.links,
                    );
                }
            }
        }
        at = end;
    }
    out
}

/// The tag's name (lower case, ASCII) and whether it closes.
fn tag_name(tag: &str) -> (String, bool) {
    let (closing, rest) = match tag.strip_prefix('/') {
        Some(r) => (true, r),
        None => (false, tag),
    };
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .take(16)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (name, closing)
}

/// The `href=` and `src=` values in one tag's text.
fn links(tag: &str, out: &mut Vec<String>) {
    let lower = tag.to_ascii_lowercase();
    for key in ["href", "src"] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(key) {
            let after = from + i + key.len();
            from = after;
            let rest = lower[after..].trim_start();
            let Some(value) = rest.strip_prefix('=') else {
                continue;
            };
            let value = value.trim_start();
            let offset = tag.len() - value.len();
            let v = match value.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let inner = &tag[offset + 1..];
                    inner.split(q).next().unwrap_or("")
                }
                _ => tag[offset..]
                    .split([' ', '\t', '\n', '\r'])
                    .next()
                    .unwrap_or(""),
            };
            if !v.is_empty() && out.len() < MAX_LINKS {
                out.push(v.to_string());
            }
        }
    }
}

/// The largest char boundary of `s` at or below `at`.
fn floor_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Appends `text` with its character references decoded: the named
/// ones mail uses, and numeric ones; anything else as written.
fn entities(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // A reference is short; a long run without `;` is text.
        let window = &rest[..floor_boundary(rest, 12)];
        let decoded = window.find(';').and_then(|semi| {
            reference(&window[1..semi]).map(|c| (c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
}

/// One reference's character (the text between `&` and `;`).
fn reference(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let n = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(n).filter(|c| *c != '\0');
    }
    Some(match name {
        "nbsp" | "ensp" | "emsp" | "thinsp" => ' ',
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "copy" => '©',
        "reg" => '®',
        "euro" => '€',
        "pound" => '£',
        "mdash" => '—',
        "ndash" => '–',
        "hellip" => '…',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_tags_and_links() {
        let s = strip(
            "<html><head><style>p{color:red}</style></head><body>\
             <p>Buy&nbsp;now &amp; save</p><a href=\"http://x.example/p\">here</a>\
             <img src=http://img.example/a.gif><!-- hidden <b> -->\
             <script>var cheap='pills'</script>&#65;&#x42;</body></html>",
        );
        let words: Vec<&str> = s.text.split_whitespace().collect();
        assert_eq!(words, ["Buy", "now", "&", "save", "here", "AB"]);
        assert_eq!(
            s.tags,
            ["html", "head", "style", "body", "p", "a", "img", "script"]
        );
        assert_eq!(
            s.links,
            ["http://x.example/p", "http://img.example/a.gif"]
        );
    }

    #[test]
    fn broken_markup_is_text_or_skipped_never_a_panic() {
        for nasty in [
            "<",
            "<<<<",
            "&",
            "&#;",
            "&#xFFFFFFFF;",
            "&#0;",
            "<a href=",
            "<a href=\"",
            "<script>never closed",
            "<!-- never closed",
            "<é href='ü'>",
            "&é;é",
            "</script>after",
            "<a href=>x</a>",
        ] {
            let _ = strip(nasty);
        }
        assert_eq!(strip("a < b").text.trim(), "a");
        // Found by the fuzz target: an unclosed tag ending in a
        // character of several octets.
        assert_eq!(strip("x <b blah\u{fffd}").tags, ["b"]);
        assert_eq!(strip("&unknown; &#x41").text, "&unknown; &#x41");
    }

    #[test]
    fn long_runs_of_unclosed_markup() {
        // Unclosed comments, tags and references, many times over: each
        // is one search, not one per character (quadratic work here
        // would not finish; the fuzz target's -timeout watches too).
        for piece in ["<!--", "<a ", "&", "<script>", "href=", "<", "&#"] {
            let s = strip(&piece.repeat(200_000));
            assert!(s.tags.len() <= MAX_TAGS && s.links.len() <= MAX_LINKS);
        }
    }
}
