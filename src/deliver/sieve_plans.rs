//! A delivery job's Sieve plans carried out inside `deliver::deliver`,
//! all or nothing with its copies: the copies each plan asks for, the
//! queue entries (redirects, vacation replies, rejection notices)
//! staged beside them, and what the scripts remember once it is done.

use std::io::Read;
use std::path::PathBuf;
use std::time::SystemTime;

use super::{Job, Made};
use crate::proto::Failure;
use crate::proto::imap::names;
use crate::sieve::delivery::{self, Plan, REDIRECTED};
use crate::sieve::memory::{self, Kind};
use crate::store::content::Content;
use crate::store::{self, Message, StageError, Staged};

/// Each mailbox's plan, when the job runs scripts; a rejection that the
/// SMTP dialog can give is returned as the delivery's failure.
pub fn plans(job: &Job) -> Result<Vec<(PathBuf, Plan)>, StageError> {
    let Some(work) = &job.sieve else {
        return Ok(Vec::new());
    };
    let scripts: Vec<_> = job
        .mailboxes
        .iter()
        .map(|dir| delivery::scripts_for(work, dir, &job.id))
        .collect();
    if scripts.iter().all(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let body = scripts.iter().flatten().any(|s| s.body);
    let mut msg = Vec::new();
    let read = job
        .content
        .reader()
        .and_then(|r| read_for(r, body, &mut msg));
    if let Err(e) = read {
        return Err(store::transient(
            "reading for sieve",
            std::path::Path::new(&job.id),
            e,
        )
        .into());
    }
    let mut plans = Vec::new();
    for (dir, scripts) in job.mailboxes.iter().zip(&scripts) {
        let plan = delivery::plan(
            work,
            dir,
            scripts,
            &msg,
            job.content.len,
            &job.sender,
            &job.id,
        );
        if let (Some(reason), true) = (&plan.reject, work.reject_in_dialog) {
            log::info!("id={} sieve: rejected in the dialog", job.id);
            return Err(StageError::Failed(Failure::Refused(one_line(
                reason,
            ))));
        }
        plans.push((dir.clone(), plan));
    }
    Ok(plans)
}

/// The message as far as the scripts may look: its header alone
/// (read a piece at a time to its blank line) unless one of them tests
/// the body; at most `MAX_READ` octets either way.
fn read_for(
    reader: impl Read,
    body: bool,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    const PIECE: usize = 16 * 1024;
    let mut reader = reader.take(crate::sieve::message::MAX_READ as u64);
    if body {
        return reader.read_to_end(out).map(|_| ());
    }
    let mut piece = [0u8; PIECE];
    loop {
        let n = reader.read(&mut piece)?;
        if n == 0 {
            return Ok(());
        }
        let from = out.len().saturating_sub(3);
        out.extend_from_slice(&piece[..n]);
        if memchr::memmem::find(&out[from..], b"\n\n").is_some()
            || memchr::memmem::find(&out[from..], b"\n\r\n").is_some()
        {
            return Ok(());
        }
    }
}

/// A reason fit for one reply line.
fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    match s.trim().is_empty() {
        true => "Rejected by the recipient's filter".into(),
        false => s.trim().to_string(),
    }
}

/// The (folder, flags) copies of one mailbox: the server's `default`
/// folder without a plan; a folder a script names that cannot be one
/// is the default instead (logged).
pub fn copies(
    plan: Option<&Plan>,
    default: &str,
    id: &str,
) -> Vec<(String, Vec<String>)> {
    let Some(plan) = plan else {
        return vec![(default.to_string(), Vec::new())];
    };
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (folder, flags) in &plan.copies {
        let name = match folder {
            None => default.to_string(),
            Some(f) => match names::check(f) {
                Ok(()) => names::canonical(f.clone()),
                Err(why) => {
                    log::warn!(
                        "id={id} sieve: fileinto {}: {why}: kept",
                        crate::util::logsafe::Quoted(f)
                    );
                    default.to_string()
                }
            },
        };
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, have)) => have.extend(flags.iter().cloned()),
            None => out.push((name, flags.clone())),
        }
    }
    out
}

/// Stages each plan's queue entries into `staged`; their ids go into
/// `made` for the loop to send once the delivery is durable.
pub fn queue(
    job: &Job,
    plans: &[(PathBuf, Plan)],
    staged: &mut Vec<Staged>,
    made: &mut Made,
) -> Result<(), StageError> {
    let Some(work) = &job.sieve else {
        return Ok(());
    };
    for (i, (dir, plan)) in plans.iter().enumerate() {
        let user = work
            .users
            .iter()
            .find(|(r, _, _)| r == dir)
            .map_or("", |(_, u, _)| u.as_str());
        let mut put = |id: String,
                       rcpts: &[String],
                       msg: &Message,
                       sign: bool|
         -> Result<(), StageError> {
            let owns = |a: &str| sign && a.eq_ignore_ascii_case(user);
            let dkim: &[_] = if sign { &job.dkim } else { &[] };
            let s = store::queue::stage(
                &job.queue_dir,
                &id,
                rcpts,
                msg,
                dkim,
                &owns,
            )?;
            staged.push(Staged::Maildir(s));
            made.queued.push(id);
            Ok(())
        };
        if !plan.redirects.is_empty() {
            let prefix = format!("{REDIRECTED}: {user}\n");
            let msg = Message {
                content: &job.content,
                sender: &work.redirect_sender,
                prefix: prefix.as_bytes(),
            };
            put(format!("{}S{i}", job.id), &plan.redirects, &msg, false)?;
        }
        // Notices of our own: from <>, made here whole.
        let mut notice = |id: String, to: &String, text: Vec<u8>, sign| {
            let content = Content::in_memory(text, SystemTime::now());
            let msg = Message {
                content: &content,
                sender: "",
                prefix: b"",
            };
            put(id, std::slice::from_ref(to), &msg, sign)
        };
        if let Some(reply) = &plan.reply {
            notice(
                format!("{}V{i}", job.id),
                &reply.to,
                reply.message.clone(),
                true,
            )?;
        }
        if let (Some(reason), false) = (&plan.reject, job.sender.is_empty()) {
            let reply = format!("550 5.7.1 {}", one_line(reason));
            let text =
                super::notices::failed(job, user, &reply, &work.hostname)?;
            notice(format!("{}J{i}", job.id), &job.sender, text, false)?;
        }
    }
    Ok(())
}

/// What the plans' scripts remember (duplicates seen, vacation replies
/// sent), once the delivery is in place.
pub fn remember(plans: &[(PathBuf, Plan)]) {
    let now = crate::util::date::now_secs();
    for (dir, plan) in plans {
        let mut ids = plan.remember.clone();
        if let Some(r) = &plan.reply {
            ids.push((Kind::Vacation, r.key.clone(), r.period));
        }
        if let Err(e) = memory::remember(dir, &ids, now) {
            log::warn!("sieve memory of {}: {e}", dir.display());
        }
    }
}
