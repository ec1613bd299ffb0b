//! The filter that learns from each user: a message's tokens
//! ([`tokens`], with [`html`] stripped), each user's word counts
//! ([`words`], a small file beside the mailbox), Robinson–Fisher
//! scoring ([`score`]), and lessons from folders and files ([`corpus`]).
//! No I/O but the word file's and the lessons' own; the server calls it
//! from helper threads.

pub mod admin;
pub mod corpus;
pub mod filing;
pub mod html;
pub mod score;
pub mod tokens;
pub mod words;

use std::path::{Path, PathBuf};

/// A user's word database: in the mailbox's folder, beside its files.
pub fn words_path(mailbox_dir: &Path) -> PathBuf {
    mailbox_dir.join("spam.words")
}
