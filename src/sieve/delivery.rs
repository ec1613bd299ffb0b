//! One user's scripts at delivery, on a durability helper: `sieve_before`
//! then the user's active script, run against the message, and what
//! their outcome asks turned into a plan the delivery carries out
//! (copies with flags, redirects, a vacation reply, a rejection). A
//! script that cannot be read or fails is logged, and the message is
//! kept as if there were none.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::memory::{self, Kind};
use super::message::Mail;
use super::vacation::{self, Reply};
use crate::config::directory::Directory;
use crate::proto::sieve::run::{self, Outcome};
use crate::proto::sieve::script::Script;

/// The header a redirected copy gets, naming whose script sent it on:
/// a copy that comes back to the same user is a loop.
pub const REDIRECTED: &str = "X-Sieve-Redirected-From";

/// What Sieve needs at delivery, besides the message.
#[derive(Debug, Clone)]
pub struct Work {
    /// The global script run before each user's (`sieve_before`).
    pub before: Option<PathBuf>,
    /// Each local mailbox, its user's address, and the recipient
    /// address that reached it.
    pub users: Vec<(PathBuf, String, String)>,
    pub directory: Arc<Directory>,
    /// The envelope sender of redirected copies (SRS where needed).
    pub redirect_sender: String,
    pub hostname: String,
    pub format: crate::config::MailboxFormat,
    /// The spam filter's probabilities, for `spamtest`.
    pub scores: Vec<(PathBuf, f64)>,
    /// One recipient over SMTP: a rejection is the dialog's reply.
    pub reject_in_dialog: bool,
}

/// One mailbox's plan.
#[derive(Debug, Default)]
pub struct Plan {
    /// Copies: a folder (None: the one chosen without Sieve) and flags.
    pub copies: Vec<(Option<String>, Vec<String>)>,
    pub redirects: Vec<String>,
    pub reply: Option<Reply>,
    /// A rejection's reason.
    pub reject: Option<String>,
    /// Ids to remember once the delivery is durable.
    pub remember: Vec<(Kind, String, u64)>,
    /// For the log line.
    pub summary: String,
}

impl Plan {
    /// No script: the copy the server chose.
    pub fn keep() -> Plan {
        Plan {
            copies: vec![(None, Vec::new())],
            ..Plan::default()
        }
    }
}

/// The scripts for `root`: `sieve_before`, then the user's; one that
/// does not compile is left out (and logged). Cheap when there are
/// none: one `readlink`.
pub fn scripts_for(work: &Work, root: &Path, id: &str) -> Vec<Arc<Script>> {
    let paths = work
        .before
        .iter()
        .cloned()
        .chain(super::scripts::active_path(root));
    paths
        .filter_map(|p| match super::scripts::compiled(&p) {
            Ok(s) => Some(s),
            // A link to a script since deleted: none.
            Err(_) if !p.exists() => None,
            Err(e) => {
                log::warn!(
                    "id={id} sieve: {}",
                    crate::util::logsafe::Quoted(&e)
                );
                None
            }
        })
        .collect()
}

/// The plan for one mailbox. `msg` is the message's first octets
/// (trace headers included), `size` its whole size.
pub fn plan(
    work: &Work,
    root: &Path,
    scripts: &[Arc<Script>],
    msg: &[u8],
    size: u64,
    sender: &str,
    id: &str,
) -> Plan {
    let Some((_, user, rcpt)) = work.users.iter().find(|(r, _, _)| r == root)
    else {
        return Plan::keep();
    };
    if scripts.is_empty() {
        return Plan::keep();
    }
    let mut mail = Mail::new(msg, size, sender, rcpt, root, work.format);
    mail.score = work.scores.iter().find(|(r, _)| r == root).map(|(_, s)| *s);
    let refs: Vec<&Script> = scripts.iter().map(|s| s.as_ref()).collect();
    let outcome = run::run(&refs, &mail);
    let mut plan = planned(outcome, &mail, user, id, work);
    if !plan.redirects.is_empty() && looped(&mail, user) {
        log::warn!("id={id} sieve: {user}: redirect loop: kept instead");
        plan.redirects.clear();
        if plan.copies.is_empty() {
            plan.copies.push((None, Vec::new()));
        }
        plan.summary.push_str(" sieve-loop");
    }
    plan
}

/// The outcome as a plan, the vacation reply decided.
fn planned(
    o: Outcome,
    mail: &Mail,
    user: &str,
    id: &str,
    work: &Work,
) -> Plan {
    let mut plan = Plan::default();
    if let Some(e) = &o.error {
        log::warn!(
            "id={id} sieve: {user}: {}: kept",
            crate::util::logsafe::Quoted(e)
        );
        plan.summary.push_str(" sieve=error");
    }
    plan.copies = o.stores.into_iter().map(|s| (s.folder, s.flags)).collect();
    plan.redirects = o.redirects;
    plan.reject = o.reject.map(|(reason, _)| reason);
    plan.remember = o
        .remember
        .into_iter()
        .map(|(k, secs)| (Kind::Duplicate, k, secs))
        .collect();
    if let Some(v) = o.vacation {
        let key = vacation::memory_key(&v, mail.from);
        let answered = memory::seen(mail.root, Kind::Vacation, &key, mail.now);
        let ours = |a: &str| {
            crate::proto::smtp::address::parse_mailbox(a.as_bytes())
                .is_ok_and(|p| work.directory.may_send_as(user, &p))
        };
        match answered {
            true => plan.summary.push_str(" vacation=already"),
            false => {
                match vacation::reply(&v, mail, user, &ours, &work.hostname) {
                    Ok(r) => {
                        plan.summary.push_str(" vacation=sent");
                        plan.reply = Some(r);
                    }
                    Err(why) => log::info!(
                        "id={id} sieve: {user}: no vacation reply: {why}"
                    ),
                }
            }
        }
    }
    if o.discarded {
        plan.summary.push_str(" sieve=discarded");
    }
    plan
}

/// The message came back to a user whose script sent it on before.
fn looped(mail: &Mail, user: &str) -> bool {
    let ours = mail
        .fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(REDIRECTED))
        .any(|(_, v)| {
            String::from_utf8_lossy(v).trim().eq_ignore_ascii_case(user)
        });
    let hops = mail
        .fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("received"))
        .count();
    ours || hops > 30
}
