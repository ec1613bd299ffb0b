//! A mailbox as the loop holds it while sessions have it selected: its
//! messages by UID with flags and MODSEQ, one copy shared by every
//! session (each keeps only its own view of which messages it has been
//! told about, see `view.rs`). The store fills and changes it; sessions
//! read it.

/// System flags and keywords of one message, in one word: bits 0–5 the
/// system flags (and Maildir's `P`), bits 6–31 keywords `a`..`z` of the
/// folder's keyword table (Maildir letters, as Dovecot's
/// `dovecot-keywords` numbers them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(pub u32);

/// The system flags in bit order, with their Maildir letters.
pub const SYSTEM: [(&str, char); 5] = [
    ("\\Seen", 'S'),
    ("\\Answered", 'R'),
    ("\\Flagged", 'F'),
    ("\\Deleted", 'T'),
    ("\\Draft", 'D'),
];
/// Maildir's `P` (passed): kept, never shown.
pub const PASSED: u32 = 1 << 5;
/// Keywords a folder may have (Maildir letters a–z).
pub const MAX_KEYWORDS: usize = 26;
const KEYWORD_SHIFT: u32 = 6;

impl Flags {
    /// \Seen.
    pub const SEEN: Flags = Flags(1);
    /// \Deleted.
    pub const DELETED: Flags = Flags(1 << 3);

    /// True if every flag of `other` is set.
    pub fn has(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bit of keyword number `i`.
    pub fn keyword(i: usize) -> Flags {
        Flags(1 << (KEYWORD_SHIFT as usize + i))
    }

    /// From the letters after `:2,` in a Maildir name; keyword letters
    /// past the table's end are dropped.
    pub fn from_maildir(info: &str) -> Flags {
        let mut f = 0;
        for c in info.chars() {
            if let Some(i) = SYSTEM.iter().position(|&(_, l)| l == c) {
                f |= 1 << i;
            } else if c == 'P' {
                f |= PASSED;
            } else if c.is_ascii_lowercase() {
                f |= 1 << (KEYWORD_SHIFT + (c as u32 - 'a' as u32));
            }
        }
        Flags(f)
    }

    /// The letters for a Maildir name, in ASCII order as the spec asks.
    pub fn to_maildir(self) -> String {
        let mut letters: Vec<char> = SYSTEM
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, &(_, l))| l)
            .collect();
        if self.0 & PASSED != 0 {
            letters.push('P');
        }
        for i in 0..MAX_KEYWORDS {
            if self.has(Flags::keyword(i)) {
                letters.push((b'a' + i as u8) as char);
            }
        }
        letters.sort_unstable();
        letters.into_iter().collect()
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// Its UID.
    pub uid: u32,
    /// Its flags.
    pub flags: Flags,
    /// When its flags last changed (or it arrived).
    pub modseq: u64,
    /// Where the store keeps it (Maildir: `cur/NAME` or `new/NAME`).
    pub file: Box<str>,
}

/// A mailbox's shared state.
#[derive(Debug, Clone, Default)]
pub struct Folder {
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// The next UID to be given.
    pub uidnext: u32,
    /// The highest MODSEQ of any change, expunges included.
    pub highest_modseq: u64,
    /// Messages, by UID ascending.
    pub msgs: Vec<Msg>,
    /// Keyword names, by number.
    pub keywords: Vec<String>,
    /// Expunges not every session has been told of yet: (modseq, uid).
    pub expunged: Vec<(u64, u32)>,
    /// Messages from this UID on are \Recent and no session has claimed
    /// them yet (RFC 3501 2.3.2: the first session to see a message gets
    /// its \Recent).
    pub recent_from: u32,
}

impl Folder {
    /// Index of the message with `uid`.
    pub fn find(&self, uid: u32) -> Option<usize> {
        self.msgs.binary_search_by_key(&uid, |m| m.uid).ok()
    }

    /// The message with `uid`.
    pub fn get(&self, uid: u32) -> Option<&Msg> {
        self.find(uid).map(|i| &self.msgs[i])
    }

    /// Writes `(\Seen $Junk ...)`.
    pub fn write_flags(&self, flags: Flags, out: &mut Vec<u8>) {
        out.push(b'(');
        let mut first = true;
        let mut put = |name: &str, out: &mut Vec<u8>| {
            if !first {
                out.push(b' ');
            }
            first = false;
            out.extend_from_slice(name.as_bytes());
        };
        for (i, (name, _)) in SYSTEM.iter().enumerate() {
            if flags.0 & (1 << i) != 0 {
                put(name, out);
            }
        }
        for (i, k) in self.keywords.iter().enumerate().take(MAX_KEYWORDS) {
            if flags.has(Flags::keyword(i)) {
                put(k, out);
            }
        }
        out.push(b')');
    }

    /// The bit for a flag name, adding a keyword to the table if there
    /// is room (`add`); None if unknown (or no room).
    pub fn flag_bit(&mut self, name: &[u8], add: bool) -> Option<Flags> {
        if let Some(i) = SYSTEM
            .iter()
            .position(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
        {
            return Some(Flags(1 << i));
        }
        if name.first() == Some(&b'\\') {
            return None;
        }
        let name = std::str::from_utf8(name).ok()?;
        if let Some(i) = self
            .keywords
            .iter()
            .position(|k| k.eq_ignore_ascii_case(name))
        {
            return Some(Flags::keyword(i));
        }
        if !add || self.keywords.len() >= MAX_KEYWORDS {
            return None;
        }
        self.keywords.push(name.to_string());
        Some(Flags::keyword(self.keywords.len() - 1))
    }

    /// Messages with `\Seen` unset, and the first of them (1-based).
    pub fn unseen(&self) -> (usize, Option<usize>) {
        let mut count = 0;
        let mut first = None;
        for (i, m) in self.msgs.iter().enumerate() {
            if !m.flags.has(Flags::SEEN) {
                count += 1;
                first.get_or_insert(i + 1);
            }
        }
        (count, first)
    }

    /// The next MODSEQ, now taken.
    pub fn bump(&mut self) -> u64 {
        self.highest_modseq += 1;
        self.highest_modseq
    }

    /// Takes in a fresh scan of the same folder: messages gone are
    /// expunged, new ones added, changed flags noted, each change with a
    /// new MODSEQ. The scan began when this folder was at MODSEQ
    /// `since`: what we changed, added or expunged after that is newer
    /// than the scan and stays as it is. True if anything changed.
    pub fn merge(&mut self, scan: Folder, since: u64) -> bool {
        if self.uidvalidity != scan.uidvalidity {
            let modseq = self.highest_modseq.max(scan.highest_modseq) + 1;
            *self = scan;
            self.highest_modseq = modseq;
            for m in &mut self.msgs {
                m.modseq = modseq;
            }
            return true;
        }
        let ours_since: Vec<u32> = self
            .expunged
            .iter()
            .filter(|&&(m, _)| m > since)
            .map(|&(_, u)| u)
            .collect();
        let mut changed = false;
        let old = std::mem::take(&mut self.msgs);
        let mut merged = Vec::with_capacity(scan.msgs.len().max(old.len()));
        let mut o = old.into_iter().peekable();
        for mut m in scan.msgs {
            while let Some(prev) = o.next_if(|p| p.uid < m.uid) {
                if prev.modseq > since {
                    // Added or changed by us after the scan began.
                    merged.push(prev);
                    continue;
                }
                let modseq = self.bump();
                self.expunged.push((modseq, prev.uid));
                changed = true;
            }
            match o.next_if(|p| p.uid == m.uid) {
                Some(prev) if prev.modseq > since => merged.push(prev),
                Some(prev) if prev.flags == m.flags => {
                    m.modseq = prev.modseq;
                    merged.push(m);
                }
                Some(_) => {
                    m.modseq = self.bump();
                    changed = true;
                    merged.push(m);
                }
                // Expunged by us after the scan began: stays gone.
                None if ours_since.contains(&m.uid) => {}
                None => {
                    m.modseq = self.bump();
                    changed = true;
                    merged.push(m);
                }
            }
        }
        for prev in o {
            if prev.modseq > since {
                merged.push(prev);
                continue;
            }
            let modseq = self.bump();
            self.expunged.push((modseq, prev.uid));
            changed = true;
        }
        self.msgs = merged;
        self.uidnext = self.uidnext.max(scan.uidnext);
        self.recent_from = self.recent_from.min(self.uidnext);
        if self.keywords.len() < scan.keywords.len() {
            self.keywords = scan.keywords;
        }
        changed
    }

    /// Unclaimed \Recent messages.
    pub fn recent_count(&self) -> usize {
        let from = self.msgs.partition_point(|m| m.uid < self.recent_from);
        self.msgs.len() - from
    }

    /// Claims the \Recent messages (`claim`), or only looks: their UIDs.
    pub fn take_recent(&mut self, claim: bool) -> Vec<u32> {
        let from = self.msgs.partition_point(|m| m.uid < self.recent_from);
        let uids = self.msgs[from..].iter().map(|m| m.uid).collect();
        if claim {
            self.recent_from = self.uidnext;
        }
        uids
    }

    /// Adds messages just stored by us (UIDs above every one here);
    /// false if they do not fit (a scan must sort it out).
    pub fn add(&mut self, new: Vec<(u32, Flags, Box<str>)>) -> bool {
        let last = self.msgs.last().map_or(0, |m| m.uid);
        if new.first().is_some_and(|(u, _, _)| *u <= last) {
            return false;
        }
        for (uid, flags, file) in new {
            let modseq = self.bump();
            self.uidnext = self.uidnext.max(uid + 1);
            self.msgs.push(Msg {
                uid,
                flags,
                modseq,
                file,
            });
        }
        true
    }

    /// Removes messages (expunged by a session of ours).
    pub fn remove(&mut self, uids: &[u32]) {
        for &uid in uids {
            if let Some(i) = self.find(uid) {
                self.msgs.remove(i);
                let modseq = self.bump();
                self.expunged.push((modseq, uid));
            }
        }
        // Bounded: old records only serve QRESYNC clients, who can also
        // be told by UID range.
        if self.expunged.len() > 100_000 {
            let cut = self.expunged.len() - 100_000;
            self.expunged.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_older_than_our_changes_does_not_undo_them() {
        let msg = |uid, flags, modseq| Msg {
            uid,
            flags: Flags(flags),
            modseq,
            file: format!("cur/{uid}").into(),
        };
        let mut f = Folder {
            uidvalidity: 1,
            uidnext: 4,
            highest_modseq: 10,
            msgs: vec![msg(1, 0, 5), msg(2, 0, 5), msg(3, 0, 5)],
            ..Folder::default()
        };
        let since = f.highest_modseq;
        // After the scan began: we flagged 1, expunged 2, appended 4.
        let m = f.bump();
        f.msgs[0].flags = Flags::SEEN;
        f.msgs[0].modseq = m;
        f.remove(&[2]);
        f.add(vec![(4, Flags(0), "cur/4".into())]);
        // The scan saw the folder before all that, and another program
        // expunged 3.
        let scan = Folder {
            uidvalidity: 1,
            uidnext: 4,
            msgs: vec![msg(1, 0, 1), msg(2, 0, 1)],
            ..Folder::default()
        };
        assert!(f.merge(scan, since));
        let uids: Vec<u32> = f.msgs.iter().map(|m| m.uid).collect();
        assert_eq!(uids, vec![1, 4]);
        assert!(f.msgs[0].flags.has(Flags::SEEN));
    }

    #[test]
    fn maildir_letters() {
        let f = Flags::from_maildir("FSab");
        assert!(f.has(Flags::SEEN));
        assert!(f.has(Flags::keyword(1)));
        assert_eq!(f.to_maildir(), "FSab");
        assert_eq!(Flags::from_maildir("PDRT").to_maildir(), "DPRT");
        let mut folder = Folder::default();
        let junk = folder.flag_bit(b"$Junk", true).unwrap();
        assert_eq!(junk, Flags::keyword(0));
        let mut out = Vec::new();
        folder.write_flags(Flags(junk.0 | 1), &mut out);
        assert_eq!(out, b"(\\Seen $Junk)");
        assert_eq!(folder.flag_bit(b"\\Recent", true), None);
    }
}
