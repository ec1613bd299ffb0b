//! After an attempt: which recipients now bounce (refused, or queued
//! too long), when to try the rest again, whether the sender gets a
//! delay notice, and whether the message is done with.

use crate::config::outbound::Outbound;
use crate::store::queue_state::{Queued, Rcpt};

/// What the queue must do about a message after an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settled {
    /// Recipients (indexes) the sender must be told failed, now.
    pub failed: Vec<usize>,
    /// Recipients (indexes) the sender must be told are delayed.
    pub delayed: Vec<usize>,
    /// No recipient is left to try: remove the message.
    pub done: bool,
}

/// The wait before attempt `attempts + 1`, by the schedule (the last
/// step repeats).
pub fn wait_after(attempts: u32, retry: &[u64]) -> u64 {
    let i = (attempts.max(1) as usize - 1).min(retry.len().saturating_sub(1));
    retry.get(i).copied().unwrap_or(3600)
}

/// Applies the policy to `q`, whose recipients already carry this
/// attempt's results; `refused` are those a server refused just now.
/// `now` is in seconds since the epoch.
pub fn settle(
    q: &mut Queued,
    refused: &[usize],
    now: i64,
    cfg: &Outbound,
) -> Settled {
    q.attempts += 1;
    let mut failed = refused.to_vec();
    let age = (now - q.created).max(0) as u64;
    if age >= cfg.max_age {
        for (i, (_, state, reply)) in q.rcpts.iter_mut().enumerate() {
            if state.open() {
                *state = Rcpt::Bounced;
                *reply = if reply.is_empty() {
                    "4.4.7 message expired in the queue".to_string()
                } else {
                    format!(
                        "4.4.7 message expired in the queue; last reply: {reply}"
                    )
                };
                failed.push(i);
            }
        }
    }
    let open: Vec<usize> = (0..q.rcpts.len())
        .filter(|&i| q.rcpts[i].1.open())
        .collect();
    let mut delayed = Vec::new();
    if !open.is_empty() {
        q.next = now + wait_after(q.attempts, &cfg.retry) as i64;
        if cfg.warn_after > 0 && !q.warned && age >= cfg.warn_after {
            q.warned = true;
            delayed = open.clone();
        }
    }
    // RFC 5321 6.1: no notice about a notice is sent back to `<>`; a
    // failed one goes to the postmaster instead, never a delay.
    if q.from.is_empty() {
        delayed.clear();
    }
    failed.sort_unstable();
    failed.dedup();
    Settled {
        failed,
        delayed,
        done: open.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(from: &str) -> Queued {
        Queued {
            id: "Q1".into(),
            from: from.into(),
            rcpts: vec![
                (
                    "a@x.example".into(),
                    Rcpt::Deferred,
                    "451 4.7.1 later".into(),
                ),
                ("b@y.example".into(), Rcpt::Bounced, "550 5.1.1 no".into()),
            ],
            created: 1000,
            attempts: 0,
            next: 1000,
            warned: false,
        }
    }

    #[test]
    fn schedule_repeats_its_last_step() {
        let r = [60, 300, 900];
        assert_eq!(wait_after(1, &r), 60);
        assert_eq!(wait_after(3, &r), 900);
        assert_eq!(wait_after(9, &r), 900);
    }

    #[test]
    fn refused_deferred_warned_expired() {
        let cfg = Outbound {
            warn_after: 100,
            max_age: 1000,
            retry: vec![60],
            ..Outbound::default()
        };
        let mut q = queued("s@l.example");
        let s = settle(&mut q, &[1], 1050, &cfg);
        assert_eq!(s.failed, vec![1]);
        assert!(s.delayed.is_empty() && !s.done);
        assert_eq!((q.attempts, q.next), (1, 1110));
        // Past warn_after: one notice, once.
        let s = settle(&mut q, &[], 1200, &cfg);
        assert_eq!(s.delayed, vec![0]);
        assert!(q.warned);
        assert!(settle(&mut q, &[], 1300, &cfg).delayed.is_empty());
        // Past max_age: the rest bounces and the message is done.
        let s = settle(&mut q, &[], 2000, &cfg);
        assert_eq!(s.failed, vec![0]);
        assert!(s.done);
        assert!(
            q.rcpts[0].2.contains("expired") && q.rcpts[0].2.contains("later")
        );
        // A notice's own failure is reported (to the postmaster), its
        // delay is not.
        let mut b = queued("");
        let s = settle(&mut b, &[1], 1200, &cfg);
        assert_eq!((s.failed, s.delayed), (vec![1], vec![]));
    }
}
