//! `postling spam train` and `postling spam score`: a user's filter
//! taught from mail they already sorted, and asked about messages, from
//! the command line. The word file is written whole and renamed into
//! place, so a running server never reads half of one, and it is given
//! to the mailbox's owner (the server's account), as delivery would.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::corpus;
use super::score::{self, Verdict};
use super::tokens;
use super::words::{Lesson, Words};
use crate::config::Config;

/// Below this score a message is ham; from it to the spam cutoff,
/// unsure (SpamBayes' ham_cutoff).
pub const HAM_CUTOFF: f64 = 0.20;

/// The user's word file, once the user is known to be one of ours.
fn user_words(cfg: &Config, user: &str) -> Result<PathBuf, String> {
    let users =
        crate::config::users::Users::load(&cfg.users_file, &cfg.domains)
            .map_err(|p| format!("{}: {p:?}", cfg.users_file.display()))?;
    let user = user.to_ascii_lowercase();
    if users.get(&user).is_none() {
        return Err(format!(
            "{user}: not a user in {}",
            cfg.users_file.display()
        ));
    }
    Ok(super::words_path(&cfg.mailbox_dir(&user)))
}

/// Learns every message at `spam` as spam and at `ham` as ham.
pub fn train(
    cfg: &Config,
    user: &str,
    spam: &[PathBuf],
    ham: &[PathBuf],
) -> Result<String, String> {
    let path = user_words(cfg, user)?;
    let mut words =
        Words::load(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut learnt = [0usize; 2];
    for (paths, lesson, n) in [(spam, Lesson::Spam, 0), (ham, Lesson::Ham, 1)]
    {
        for p in paths {
            learnt[n] += corpus::for_each(p, &mut |msg| {
                words.learn(&tokens::of(msg).hashes, lesson);
            })
            .map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    words
        .save(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    give_to_owner(&path, &cfg.data_dir);
    Ok(format!(
        "learnt {} spam and {} ham; {} now knows {} spam, {} ham, {} tokens ({} KiB)",
        learnt[0],
        learnt[1],
        path.display(),
        words.spam,
        words.ham,
        words.len(),
        words.to_bytes().len().div_ceil(1024),
    ))
}

/// One line per message: `spam 0.998 PATH`, `ham`, `unsure`, or
/// `abstain` while too little is learnt.
pub fn score(
    cfg: &Config,
    user: &str,
    paths: &[PathBuf],
    out: &mut dyn Write,
) -> Result<(), String> {
    let path = user_words(cfg, user)?;
    let words =
        Words::load(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    for p in paths {
        let mut n = 0;
        let mut failed = None;
        corpus::for_each(p, &mut |msg| {
            n += 1;
            let line = match score::score(&words, &tokens::of(msg).hashes) {
                Verdict::Abstain => format!("abstain - {} {n}\n", p.display()),
                v @ Verdict::Score(s) => {
                    let word = match s {
                        _ if v.is_spam() => "spam",
                        s if s < HAM_CUTOFF => "ham",
                        _ => "unsure",
                    };
                    format!("{word} {s:.4} {} {n}\n", p.display())
                }
            };
            if let Err(e) = out.write_all(line.as_bytes()) {
                failed.get_or_insert(e);
            }
        })
        .map_err(|e| format!("{}: {e}", p.display()))?;
        if let Some(e) = failed {
            return Err(e.to_string());
        }
    }
    Ok(())
}

/// Run as root, the file (and any mailbox folder made for it) would be
/// root's, and the server's account could not read it: they go to
/// whoever owns the mail folders.
fn give_to_owner(path: &Path, data_dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    let mail = data_dir.join("mail");
    let Some(owner) = [mail.as_path(), data_dir]
        .into_iter()
        .find_map(|p| std::fs::metadata(p).ok())
    else {
        return;
    };
    for p in path
        .ancestors()
        .take_while(|p| p.starts_with(&mail) && *p != mail)
    {
        let _ =
            std::os::unix::fs::chown(p, Some(owner.uid()), Some(owner.gid()));
    }
}
