//! What a transaction's outcomes mean for its batch and message, and
//! the log line for each recipient.

use super::*;
use crate::server::base::stats::Event;

impl Server {
    /// A transaction ended. Its outcomes are the batch's, unless the
    /// connection failed (then the next address is tried). The
    /// connection goes on with a batch waiting for the same destination,
    /// or says QUIT.
    pub(in crate::server) fn batch_finished(
        &mut self,
        idx: usize,
        outcomes: Vec<Outcome>,
    ) -> Vec<Action> {
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return Vec::new();
        };
        let failed = p.client.is_closed()
            && outcomes.iter().all(|o| matches!(o, Outcome::Deferred(_)));
        if failed {
            // The connection failed, not the message: the batch moves on
            // to the next address, keeping the reason.
            if let Some(key) = p.batch.take() {
                let relay = p.relay();
                if let (Some(b), Some(Outcome::Deferred(r))) =
                    (self.outbound.batches.get_mut(&key), outcomes.first())
                {
                    b.last = Some((r.clone(), Some(relay)));
                }
                self.try_connect(key);
            }
            return Vec::new();
        }
        let Some(key) = p.batch.take() else {
            return Vec::new();
        };
        p.sent += 1;
        let relay = p.relay();
        let tls = p.tls_word();
        self.batch_results(key, &outcomes, &relay, tls);
        // Reuse: the next batch for this destination.
        let dest = match self.outbound.peers.get(idx) {
            Some(Some(p)) => p.dest.clone(),
            _ => return Vec::new(),
        };
        if self.core.draining.is_some() {
            let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
                return Vec::new();
            };
            p.closing = true;
            return p.client.quit();
        }
        let next = self.outbound.waiting.iter().position(|k| {
            self.outbound.batches.get(k).is_some_and(|b| b.dest == dest)
        });
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return Vec::new();
        };
        if let Some(pos) = next
            && let Some(k) = self.outbound.waiting.remove(pos)
        {
            p.batch = Some(k);
            return vec![Action::Ready];
        }
        // Kept a moment for the next message to this destination.
        p.idle = true;
        p.deadline = Instant::now() + KEEP_IDLE;
        let (g, d) = (p.generation, p.deadline);
        self.core.timers.add(d, Timer::Peer, (idx, g));
        Vec::new()
    }

    /// Records each recipient's outcome in its message, and logs it.
    pub(in crate::server) fn batch_results(
        &mut self,
        key: u64,
        outcomes: &[Outcome],
        relay: &str,
        tls: &str,
    ) {
        let Some(b) = self.outbound.batches.remove(&key) else {
            return;
        };
        let Some(a) = self.outbound.attempts.get_mut(&b.msg) else {
            return;
        };
        let delay = (epoch_now() - a.ready.queued.created).max(0);
        for (n, &i) in b.rcpts.iter().enumerate() {
            let Some(outcome) = outcomes.get(n) else {
                continue;
            };
            let (state, reply, word, event) = match outcome {
                Outcome::Sent(r) => (Rcpt::Delivered, r, "sent", Event::Sent),
                Outcome::Deferred(r) => {
                    (Rcpt::Deferred, r, "deferred", Event::Deferred)
                }
                Outcome::Bounced(r) => {
                    (Rcpt::Bounced, r, "bounced", Event::Bounced)
                }
            };
            self.services.stats.add(event, 1, Instant::now());
            let line = reply.one_line();
            info!(
                "outbound id={} to={} relay={relay} delay={delay}s tls={tls} result={word} reply={}",
                b.msg,
                Quoted(&format!("<{}>", a.ready.queued.rcpts[i].0)),
                Quoted(&line)
            );
            let r = &mut a.ready.queued.rcpts[i];
            r.1 = state;
            r.2 = line;
            if !relay.is_empty() {
                a.remotes[i] = Some(relay.to_string());
            }
            if state == Rcpt::Bounced {
                a.refused.push(i);
            }
        }
        self.attempt_step(&b.msg);
    }

    /// A batch ended without a transaction: every recipient gets
    /// `outcome`.
    pub(in crate::server) fn batch_over(
        &mut self,
        key: u64,
        outcome: Outcome,
        remote: Option<String>,
    ) {
        let n = self.outbound.batches.get(&key).map_or(0, |b| b.rcpts.len());
        let outcomes = vec![outcome; n];
        let relay = remote.unwrap_or_default();
        self.batch_results(key, &outcomes, &relay, "none");
    }
}
