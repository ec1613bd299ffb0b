//! What the blocklists say of the client (`dnsbl`, asked at connect) and
//! of the sender's domain (`rhsbl`, asked at MAIL), as the loop learns
//! it. Their verdict is given at RCPT, as Postfix's `reject_rbl_client`
//! does (the log then says whom the mail was for): a RCPT that comes
//! before the answers waits for them, unread, and the loop feeds it
//! again once they are in.

use super::{Reply, Server};

/// One verdict's state.
#[derive(Debug, Clone, Default)]
pub(super) enum Gate {
    /// No list to ask, or the answers say the way is clear.
    #[default]
    Open,
    /// Lookups are out.
    Waiting,
    /// Listed: RCPT gets this reply.
    Refuse(Reply),
}

/// Whether SPF vouches for this transaction's sender against
/// greylisting (its domain passed DMARC here before).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Vouch {
    /// Nobody asked: greylisting as usual.
    #[default]
    No,
    /// The domain is known; SPF is still being checked.
    Waiting,
    /// SPF passed for a known domain: no greylisting.
    Yes,
}

/// The blocklists' verdicts for this session, and SPF's vouching.
#[derive(Debug, Default)]
pub(super) struct Listings {
    pub client: Gate,
    pub sender: Gate,
    pub vouch: Vouch,
    /// Sender lists are set: each transaction's sender is asked about.
    pub sender_lists: bool,
}

impl Listings {
    /// The reply for RCPT: Ok(None) to go on, Ok(Some) to refuse, Err
    /// to wait.
    pub fn at_rcpt(&self) -> Result<Option<Reply>, ()> {
        for gate in [&self.client, &self.sender] {
            match gate {
                Gate::Open => {}
                Gate::Waiting => return Err(()),
                Gate::Refuse(reply) => return Ok(Some(reply.clone())),
            }
        }
        match self.vouch {
            Vouch::Waiting => Err(()),
            _ => Ok(None),
        }
    }
}

fn verdict(refusal: Option<String>) -> Gate {
    match refusal {
        None => Gate::Open,
        Some(text) => Gate::Refuse(Reply::new(554, "5.7.1", text)),
    }
}

impl Server {
    /// Blocklists will be asked about this client (`client`), and about
    /// each transaction's sender (`senders`): RCPT waits for them.
    pub fn expect_listings(&mut self, client: bool, senders: bool) {
        if client {
            self.listings.client = Gate::Waiting;
        }
        self.listings.sender_lists = senders;
    }

    /// The client's blocklist verdict: None, not listed; else the text
    /// of the 554 every RCPT gets.
    pub fn client_listed(&mut self, refusal: Option<String>) {
        self.listings.client = verdict(refusal);
    }

    /// The verdict on the sender of transaction `id` (answers for an
    /// earlier transaction are dropped).
    pub fn sender_listed(&mut self, id: &str, refusal: Option<String>) {
        if self.transaction().is_some_and(|(current, _)| current == id) {
            self.listings.sender = verdict(refusal);
        }
    }

    /// This transaction's sender domain passed DMARC here before: RCPT
    /// waits for its SPF check, which may spare it greylisting.
    pub fn expect_vouch(&mut self, id: &str) {
        if self.transaction().is_some_and(|(current, _)| current == id) {
            self.listings.vouch = Vouch::Waiting;
        }
    }

    /// SPF's result for that sender: `passed` spares it greylisting.
    pub fn spf_vouched(&mut self, id: &str, passed: bool) {
        if self.transaction().is_some_and(|(current, _)| current == id)
            && self.listings.vouch == Vouch::Waiting
        {
            self.listings.vouch = if passed { Vouch::Yes } else { Vouch::No };
        }
    }

    /// True while a RCPT waits, unread, for the blocklists' answers.
    pub fn rcpt_waits(&self) -> bool {
        self.held
    }

    /// True while RCPT would wait for a blocklist's answer.
    pub fn awaits_listings(&self) -> bool {
        self.is_stranger() && self.listings.at_rcpt().is_err()
    }
}
