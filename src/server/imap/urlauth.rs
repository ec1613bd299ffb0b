//! URLAUTH (RFC 4467) on the mailbox helpers: each user's mailbox
//! access keys (random, in `postling-urlauth-keys` in the user's root,
//! 0600), tokens as HMAC-SHA256 of the URL's rump, and URLFETCH
//! reading the message a URL names.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::MailboxFormat;
use crate::proto::imap::request::{No, UrlFetched};
use crate::proto::imap::url::{self, Access};
use crate::proto::imap::urlfetch;
use crate::server::imap::folder_io::{
    failed, folder_exists, read_message, scan,
};
use crate::store::{folders, mailfolder};

/// The keys file in a user's root.
const KEYS: &str = "postling-urlauth-keys";

/// The two helpers read and rewrite key files one at a time.
static KEYS_LOCK: Mutex<()> = Mutex::new(());

/// `(mailbox, key)` lines, key in hex.
fn load(root: &Path) -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(root.join(KEYS)).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (key, name) = l.split_once('\t')?;
            Some((name.to_string(), unhex(key)?))
        })
        .collect()
}

fn save(root: &Path, keys: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    let text: String = keys
        .iter()
        .map(|(name, key)| format!("{}\t{name}\n", hex(key)))
        .collect();
    crate::util::fs::atomic_write(&root.join(KEYS), text.as_bytes())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The mailbox's access key; made if `create` and there is none.
fn key(
    root: &Path,
    mailbox: &str,
    create: bool,
) -> std::io::Result<Option<Vec<u8>>> {
    let _guard = KEYS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut keys = load(root);
    if let Some((_, k)) = keys.iter().find(|(n, _)| n == mailbox) {
        return Ok(Some(k.clone()));
    }
    if !create {
        return Ok(None);
    }
    let mut k = vec![0u8; 32];
    SystemRandom::new()
        .fill(&mut k)
        .map_err(|_| std::io::Error::other("no random numbers"))?;
    keys.push((mailbox.to_string(), k.clone()));
    save(root, &keys)?;
    Ok(Some(k))
}

/// RESETKEY: a mailbox's key, or all of them, forgotten (every URL
/// made with them stops working).
pub fn reset(
    fmt: MailboxFormat,
    root: &Path,
    mailbox: Option<&str>,
) -> Result<(), No> {
    if let Some(m) = mailbox
        && !folders::exists(root, m, fmt)
    {
        return Err(No::code("NONEXISTENT", "no such mailbox"));
    }
    let _guard = KEYS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut keys = load(root);
    keys.retain(|(n, _)| mailbox.is_some_and(|m| m != n));
    save(root, &keys).map_err(|e| failed("resetkey", e))
}

fn token(key: &[u8], rump: &str) -> String {
    hex(
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), rump.as_bytes())
            .as_ref(),
    )
}

/// GENURLAUTH for `user`: each rump URL with its INTERNAL token.
pub fn generate(
    fmt: MailboxFormat,
    root: &Path,
    user: &str,
    rumps: &[String],
) -> Result<Vec<String>, No> {
    let bad =
        |u: &str, why: &str| No::text(format!("[BADURL {}] {why}", quoted(u)));
    let mut out = Vec::with_capacity(rumps.len());
    for r in rumps {
        let u = url::parse_auth(r).map_err(|why| bad(r, why))?;
        if u.token.is_some() {
            return Err(bad(r, "the URL has a token already"));
        }
        if !u.owners().iter().any(|o| o.eq_ignore_ascii_case(user)) {
            return Err(bad(r, "not your mailbox"));
        }
        if !folders::exists(root, &u.url.mailbox, fmt) {
            return Err(bad(r, "no such mailbox"));
        }
        let k = key(root, &u.url.mailbox, true)
            .map_err(|e| failed("genurlauth", e))?
            .ok_or_else(|| No::text("no key"))?;
        out.push(format!("{}:INTERNAL:{}", u.rump, token(&k, &u.rump)));
    }
    Ok(out)
}

/// One URL for URLFETCH: the text, the owner's root (None: no such
/// user), BINARY, BODYPARTSTRUCTURE.
pub struct FetchOne {
    /// The URL as sent.
    pub url: String,
    /// The owner's mailbox root, if the owner is a user here.
    pub root: Option<PathBuf>,
    /// Transfer encodings undone.
    pub binary: bool,
    /// The part's structure too.
    pub structure: bool,
}

/// URLFETCH by `user`: each URL's data, or NIL when it does not check
/// out (any reason: RFC 4467 says not which). The answers are held
/// whole, so together they stay within `budget` octets (the largest
/// message we take): past it, a URL gets NIL, however often a client
/// names a big message.
pub fn fetch(
    fmt: MailboxFormat,
    user: &str,
    urls: &[FetchOne],
    now: i64,
    budget: u64,
) -> Vec<UrlFetched> {
    let mut left = budget;
    urls.iter()
        .map(|one| {
            let answer = one
                .root
                .as_deref()
                .and_then(|root| fetch_one(fmt, root, user, one, now))
                .filter(|a| {
                    let size = a.data.as_ref().map_or(0, Vec::len)
                        + a.structure.as_ref().map_or(0, Vec::len);
                    let fits = size as u64 <= left;
                    if fits {
                        left -= size as u64;
                    }
                    fits
                });
            let (data, structure) = match answer {
                Some(a) => (a.data, a.structure),
                None => (None, None),
            };
            UrlFetched {
                url: one.url.clone(),
                data,
                structure,
                binary: one.binary,
                asked_structure: one.structure,
            }
        })
        .collect()
}

fn fetch_one(
    fmt: MailboxFormat,
    root: &Path,
    user: &str,
    one: &FetchOne,
    now: i64,
) -> Option<urlfetch::Answer> {
    let u = url::parse_auth(&one.url).ok()?;
    let (mech, given) = u.token.as_ref()?;
    if !mech.eq_ignore_ascii_case("INTERNAL")
        || u.expire.is_some_and(|e| e <= now)
    {
        return None;
    }
    let allowed = match &u.access {
        Access::User(name) => name.eq_ignore_ascii_case(user),
        Access::AuthUser | Access::Anonymous => true,
        // We are not a submission server fetching for BURL.
        Access::Submit(_) => false,
    };
    if !allowed {
        return None;
    }
    let k = key(root, &u.url.mailbox, false).ok()??;
    let tag = hmac::Key::new(hmac::HMAC_SHA256, &k);
    hmac::verify(&tag, u.rump.as_bytes(), &unhex(given)?).ok()?;
    let dir = folders::place(root, &u.url.mailbox, fmt);
    if !folder_exists(fmt, &dir) {
        return None;
    }
    let folder = scan(fmt, &dir).ok()?;
    if u.url.uidvalidity.is_some_and(|v| v != folder.uidvalidity) {
        return None;
    }
    let file = folder.get(u.url.uid)?.file.clone();
    let (raw, _) = read_message(fmt, &dir, &file).ok()?;
    let msg = mailfolder::to_crlf(&raw);
    Some(urlfetch::answer(&msg, &u.url, one.binary, one.structure))
}

/// A URL as a quoted string in a response code.
fn quoted(s: &str) -> String {
    let clean: String = s
        .chars()
        .filter(|c| !c.is_control() && *c != ']')
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            _ => vec![c],
        })
        .collect();
    format!("\"{clean}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_check_and_keys_reset() {
        let root = std::env::temp_dir()
            .join(format!("postling-urlauth-{}", std::process::id()));
        std::fs::create_dir_all(root.join("cur"))
            .unwrap_or_else(|e| panic!("{e}"));
        let k = key(&root, "INBOX", true)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_default();
        assert_eq!(k.len(), 32);
        assert_eq!(key(&root, "INBOX", false).ok().flatten(), Some(k.clone()));
        let t = token(&k, "imap://a@h/INBOX/;UID=1;URLAUTH=anonymous");
        assert_eq!(t.len(), 64);
        assert_ne!(t, token(&k, "imap://a@h/INBOX/;UID=2;URLAUTH=anonymous"));
        reset(MailboxFormat::Maildir, &root, None)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(key(&root, "INBOX", false).ok().flatten(), None);
        let _ = std::fs::remove_dir_all(&root);
    }
}
