//! CONTEXT=SEARCH (RFC 5267): searches kept up to date. Each one keeps
//! its keys, its result (UIDs) and, for keys that look inside messages,
//! each message's answers to those keys, so flag changes are answered
//! from memory; only new messages go to the helpers.

use std::collections::HashMap;

use super::folder::Folder;
use super::matcher::{self, Facts};
use super::response::line;
use super::search::Key;
use super::sequence::write_set;

/// At most this many searches are kept up to date per session.
const MAX_CONTEXTS: usize = 10;

/// One search kept up to date.
#[derive(Debug)]
struct Context {
    tag: Vec<u8>,
    uid_mode: bool,
    keys: Key,
    /// The keys look inside messages: `answers` holds what they said.
    content: bool,
    answers: HashMap<u32, u64>,
    /// The result, ascending UIDs.
    result: Vec<u32>,
}

/// The session's searches kept up to date.
#[derive(Debug, Default)]
pub struct Updates {
    list: Vec<Context>,
}

/// Why a search cannot be kept up to date (`NOUPDATE`).
pub struct NoUpdate;

impl Updates {
    /// Keeps a search up to date from now on.
    pub fn add(
        &mut self,
        tag: &[u8],
        uid_mode: bool,
        keys: Key,
        answers: HashMap<u32, u64>,
        result: Vec<u32>,
    ) -> Result<(), NoUpdate> {
        let content = matcher::needs_content(&keys);
        if self.list.len() >= MAX_CONTEXTS
            || matcher::content_leaf_count(&keys) > 64
        {
            return Err(NoUpdate);
        }
        self.list.retain(|c| c.tag != tag);
        self.list.push(Context {
            tag: tag.to_vec(),
            uid_mode,
            keys,
            content,
            answers,
            result,
        });
        Ok(())
    }

    /// CANCELUPDATE: true if that search was kept.
    pub fn cancel(&mut self, tag: &[u8]) -> bool {
        let before = self.list.len();
        self.list.retain(|c| c.tag != tag);
        self.list.len() != before
    }

    /// Before `gone` are expunged from `view`: REMOVEFROM with the
    /// numbers the EXPUNGE responses use (highest first, so unshifted).
    pub fn expunging(
        &mut self,
        view: &[u32],
        gone: &[u32],
        out: &mut Vec<u8>,
    ) {
        for c in &mut self.list {
            let removed: Vec<u32> = c
                .result
                .iter()
                .copied()
                .filter(|u| gone.binary_search(u).is_ok())
                .collect();
            if removed.is_empty() {
                continue;
            }
            let pos = c.result.binary_search(&removed[0]).map_or(0, |p| p + 1);
            let numbers = numbers(c.uid_mode, view, &removed);
            c.result.retain(|u| gone.binary_search(u).is_err());
            for u in &removed {
                c.answers.remove(u);
            }
            report(c, "REMOVEFROM", pos, &numbers, out);
        }
    }

    /// Evaluates every search again over `view`: ADDTO and REMOVEFROM
    /// for what changed. Messages whose content answers are not known
    /// yet count as not matching until `answered` brings them.
    pub fn refresh(
        &mut self,
        view: &[u32],
        recent: &[u32],
        f: &Folder,
        out: &mut Vec<u8>,
    ) {
        if self.list.is_empty() {
            return;
        }
        let max_uid = view.last().copied().unwrap_or(0);
        for c in &mut self.list {
            let mut now = Vec::with_capacity(c.result.len());
            for (i, &uid) in view.iter().enumerate() {
                let Some(m) = f.get(uid) else {
                    // Gone, its EXPUNGE not told yet: as it was.
                    if c.result.binary_search(&uid).is_ok() {
                        now.push(uid);
                    }
                    continue;
                };
                let facts = Facts {
                    seq: i as u32 + 1,
                    max_seq: view.len() as u32,
                    uid,
                    max_uid,
                    flags: m.flags,
                    recent: recent.binary_search(&uid).is_ok(),
                    modseq: m.modseq,
                    keywords: &f.keywords,
                };
                let hit = if c.content {
                    c.answers.get(&uid).is_some_and(|&a| {
                        matcher::matches_with(&c.keys, &facts, a)
                    })
                } else {
                    matcher::matches(&c.keys, &facts, None)
                };
                if hit {
                    now.push(uid);
                }
            }
            let removed: Vec<u32> = c
                .result
                .iter()
                .copied()
                .filter(|u| now.binary_search(u).is_err())
                .collect();
            let added: Vec<u32> = now
                .iter()
                .copied()
                .filter(|u| c.result.binary_search(u).is_err())
                .collect();
            if let Some(&first) = removed.first() {
                let pos = c.result.binary_search(&first).map_or(0, |p| p + 1);
                report(
                    c,
                    "REMOVEFROM",
                    pos,
                    &numbers(c.uid_mode, view, &removed),
                    out,
                );
            }
            if let Some(&first) = added.first() {
                let pos = now.binary_search(&first).map_or(0, |p| p + 1);
                report(
                    c,
                    "ADDTO",
                    pos,
                    &numbers(c.uid_mode, view, &added),
                    out,
                );
            }
            c.result = now;
        }
    }

    /// A search with messages in `view` whose content answers are not
    /// known: its index, keys and those UIDs.
    pub fn unanswered(&self, view: &[u32]) -> Option<(usize, Key, Vec<u32>)> {
        self.list.iter().enumerate().find_map(|(i, c)| {
            if !c.content {
                return None;
            }
            let missing: Vec<u32> = view
                .iter()
                .copied()
                .filter(|u| !c.answers.contains_key(u))
                .collect();
            (!missing.is_empty()).then(|| (i, c.keys.clone(), missing))
        })
    }

    /// The helpers' answers for search `index`; UIDs asked for but not
    /// answered (gone meanwhile) match nothing.
    pub fn answered(
        &mut self,
        index: usize,
        asked: &[u32],
        answers: &[(u32, u64)],
    ) {
        if let Some(c) = self.list.get_mut(index) {
            for &u in asked {
                c.answers.insert(u, 0);
            }
            c.answers.extend(answers.iter().copied());
        }
    }
}

/// UIDs, or their sequence numbers in `view`.
fn numbers(uid_mode: bool, view: &[u32], uids: &[u32]) -> Vec<u32> {
    if uid_mode {
        return uids.to_vec();
    }
    uids.iter()
        .filter_map(|u| view.binary_search(u).ok().map(|i| i as u32 + 1))
        .collect()
}

fn report(
    c: &Context,
    what: &str,
    pos: usize,
    numbers: &[u32],
    out: &mut Vec<u8>,
) {
    let mut set = Vec::new();
    write_set(numbers, &mut set);
    let tag = String::from_utf8_lossy(&c.tag);
    let uid = if c.uid_mode { " UID" } else { "" };
    line(
        out,
        &format!(
            "* ESEARCH (TAG \"{tag}\"){uid} {what} ({pos} {})",
            String::from_utf8_lossy(&set)
        ),
    );
}
