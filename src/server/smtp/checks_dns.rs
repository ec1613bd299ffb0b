//! The checks' lookups through the loop's resolver: SPF's questions one
//! after another (the RFC evaluates terms in order), DKIM and ARC key
//! records and the DMARC record in parallel, iprev's forward lookups.
//! A resolver answer can come at once (from its cache), so state is
//! set before each question is asked.

use crate::proto::dkim::key_cache::KeyCache;
use crate::proto::dkim::verify::Outcome;
use crate::proto::dmarc::psl::List;
use crate::proto::dmarc::record;
use crate::proto::dns::cache::Found;
use crate::proto::dns::resolver::Failure;
use crate::proto::dns::wire::{Qtype, Rec};
use crate::proto::spf::check as spf;
use crate::proto::spf::resolved::{spf_answer, wire_type};
use crate::server::Server;
use crate::server::outbound::dns::Waiter;

use super::check_state::{End, Iprev, Spf};
use crate::inbound::assemble::DmarcLookup;
use crate::inbound::verdict;

/// iprev looks up at most this many of a client's names.
const MAX_IPREV_NAMES: usize = 5;

pub use super::check_state::Ask;

/// TXT strings of an answer, or the outcome for a key without them.
fn key_from(
    result: Result<Found, Failure>,
    keys: &mut KeyCache,
) -> Result<crate::proto::dkim::tags::Key, Outcome> {
    match result {
        Ok(Found::Records(recs)) => {
            let texts: Vec<Vec<u8>> = recs
                .into_iter()
                .filter_map(|r| match r {
                    Rec::Txt(t) => Some(t),
                    _ => None,
                })
                .collect();
            keys.read(texts)
        }
        // RFC 6376 §6.1.2: no key record is a permanent failure.
        Ok(_) => Err(Outcome::PermError("no key record")),
        Err(Failure::BadName) => {
            Err(Outcome::PermError("bad key record name"))
        }
        Err(_) => Err(Outcome::TempError("key lookup failed")),
    }
}

impl Server {
    /// One step of the transaction's SPF check: a question, or the end.
    pub(in crate::server) fn spf_drive(&mut self, slot: usize) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let generation = conn.generation;
        let Some(s) = conn.session.as_smtp() else {
            return;
        };
        let Some(txn) = s.checks.txn.as_mut() else {
            return;
        };
        let serial = txn.serial;
        let Spf::Running {
            check,
            identity,
            helo,
            domain,
        } = &mut txn.spf
        else {
            return;
        };
        match check.step() {
            spf::Step::Lookup(q) => {
                let waiter = Waiter::Check(slot, generation, serial, Ask::Spf);
                self.dns_lookup(&q.name, wire_type(q.qtype), waiter);
            }
            spf::Step::Done(v) => {
                let passed = v.result == spf::SpfResult::Pass;
                txn.spf = Spf::Done(verdict::Spf {
                    result: v.result,
                    identity: std::mem::take(identity),
                    helo: *helo,
                    domain: std::mem::take(domain),
                });
                let id = txn.id.clone();
                let held = s.smtp.rcpt_waits();
                s.smtp.spf_vouched(&id, passed);
                if held && !s.smtp.awaits_listings() {
                    self.resume(slot);
                }
                self.checks_progress((slot, generation));
            }
        }
    }

    /// A checks lookup is answered.
    pub(in crate::server) fn check_answered(
        &mut self,
        (slot, generation, serial): (usize, u64, u64),
        ask: Ask,
        result: Result<Found, Failure>,
    ) {
        if let Ask::Listed { sender, index } = ask {
            return self.listing_answered(
                (slot, generation, serial),
                sender,
                index,
                result,
            );
        }
        if let Ask::Link(index) = ask {
            return self.link_answered(
                (slot, generation, serial),
                index,
                result,
            );
        }
        let Some(checking) = self.smtp.checking.as_mut() else {
            return;
        };
        let (psl, keys) = (&checking.psl, &mut checking.keys);
        let Some(conn) = self
            .core
            .conn_mut(slot)
            .filter(|c| c.generation == generation)
        else {
            return;
        };
        let peer = conn.peer;
        let Some(s) = conn.session.as_smtp() else {
            return;
        };
        if let Ask::IprevName(i) = ask {
            iprev_forward(&mut s.checks.iprev, i, result, peer);
            return self.checks_progress((slot, generation));
        }
        let Some(txn) = s.checks.txn.as_mut().filter(|t| t.serial == serial)
        else {
            return; // an earlier transaction's
        };
        match ask {
            Ask::Spf => {
                if let Spf::Running { check, .. } = &mut txn.spf {
                    check.answer(spf_answer(result));
                }
                return self.spf_drive(slot);
            }
            Ask::Key(i) => {
                if let Some(k) =
                    txn.end.as_mut().and_then(|e| e.keys.get_mut(i))
                {
                    k.1 = Some(key_from(result, keys));
                }
            }
            Ask::Dmarc => {
                if let Some(end) = txn.end.as_mut() {
                    let next = dmarc_found(psl, end, result);
                    if let Some(name) = next {
                        let waiter = Waiter::Check(
                            slot,
                            generation,
                            serial,
                            Ask::Dmarc,
                        );
                        return self.dns_lookup(
                            &format!("_dmarc.{name}"),
                            Qtype::Txt,
                            waiter,
                        );
                    }
                }
            }
            Ask::IprevName(_) | Ask::Listed { .. } | Ask::Link(_) => {}
        }
        self.checks_progress((slot, generation));
    }
}

/// The DMARC answer for the domain asked; the organizational domain to
/// ask next, if the From domain had no record.
fn dmarc_found(
    psl: &List,
    end: &mut End,
    result: Result<Found, Failure>,
) -> Option<String> {
    let DmarcLookup::Asking(asked) = &end.g.dmarc else {
        return None;
    };
    let asked = asked.clone();
    let texts: Vec<String> = match result {
        Ok(Found::Records(recs)) => recs
            .into_iter()
            .filter_map(|r| match r {
                Rec::Txt(t) => Some(String::from_utf8_lossy(&t).into_owned()),
                _ => None,
            })
            .filter(|t| record::is_dmarc(t))
            .collect(),
        Ok(_) | Err(Failure::BadName) => Vec::new(),
        Err(_) => {
            end.g.dmarc = DmarcLookup::TempError;
            return None;
        }
    };
    // §6.6.3: exactly one record, or none.
    if let [one] = texts.as_slice()
        && let Ok(r) = record::parse(one)
    {
        end.g.dmarc = DmarcLookup::Found(Some((r, asked)));
        return None;
    }
    let org = psl.organizational(&asked);
    let from = end.g.from.as_deref().unwrap_or_default();
    let first_ask = asked.eq_ignore_ascii_case(from);
    if texts.is_empty() && first_ask && !org.eq_ignore_ascii_case(&asked) {
        end.g.dmarc = DmarcLookup::Asking(org.clone());
        return Some(org);
    }
    end.g.dmarc = DmarcLookup::Found(None);
    None
}

impl Server {
    /// After the message is read: every key record, and the DMARC record.
    pub(in crate::server) fn start_lookups(&mut self, key: (usize, u64)) {
        let Some(conn) =
            self.core.conn_mut(key.0).filter(|c| c.generation == key.1)
        else {
            return;
        };
        let Some(s) = conn.session.as_smtp() else {
            return;
        };
        let Some(txn) = s.checks.txn.as_ref() else {
            return;
        };
        let serial = txn.serial;
        let Some(end) = txn.end.as_ref() else {
            return;
        };
        let names: Vec<String> =
            end.keys.iter().map(|(n, _)| n.clone()).collect();
        let dmarc = match &end.g.dmarc {
            DmarcLookup::Asking(d) => Some(format!("_dmarc.{d}")),
            _ => None,
        };
        for (i, name) in names.iter().enumerate() {
            let waiter = Waiter::Check(key.0, key.1, serial, Ask::Key(i));
            self.dns_lookup(name, Qtype::Txt, waiter);
        }
        if let Some(name) = dmarc {
            let waiter = Waiter::Check(key.0, key.1, serial, Ask::Dmarc);
            self.dns_lookup(&name, Qtype::Txt, waiter);
        }
    }

    /// The client's PTR names came (or did not): iprev's forward
    /// lookups start.
    pub(in crate::server) fn iprev_names(
        &mut self,
        (slot, generation): (usize, u64),
        result: &Result<Found, Failure>,
    ) {
        let Some(conn) = self.live_conn(slot, generation) else {
            return;
        };
        let peer = conn.peer;
        let Some(s) = conn.session.as_smtp() else {
            return;
        };
        let names: Vec<String> = match result {
            Ok(Found::Records(recs)) => recs
                .iter()
                .filter_map(|r| match r {
                    Rec::Ptr(n) => Some(n.clone()),
                    _ => None,
                })
                .take(MAX_IPREV_NAMES)
                .collect(),
            _ => Vec::new(),
        };
        let done = |result, name| Iprev::Done(verdict::Iprev { result, name });
        s.checks.iprev = match (result, names.is_empty()) {
            (
                Err(Failure::Timeout | Failure::Server(_) | Failure::Busy),
                _,
            ) => done("temperror", None),
            (_, true) => done("permerror", None),
            (_, false) => Iprev::Forward {
                names: names.clone(),
                pending: names.len(),
                matched: None,
                temp: false,
            },
        };
        let qtype = match peer {
            std::net::IpAddr::V4(_) => Qtype::A,
            std::net::IpAddr::V6(_) => Qtype::Aaaa,
        };
        for (i, name) in names.iter().enumerate() {
            let waiter = Waiter::Check(slot, generation, 0, Ask::IprevName(i));
            self.dns_lookup(name, qtype, waiter);
        }
        self.checks_progress((slot, generation));
    }
}

/// One of the client's names' addresses came.
fn iprev_forward(
    state: &mut Iprev,
    index: usize,
    result: Result<Found, Failure>,
    peer: std::net::IpAddr,
) {
    let Iprev::Forward {
        names,
        pending,
        matched,
        temp,
    } = state
    else {
        return;
    };
    let ip = match peer {
        std::net::IpAddr::V6(v6) => {
            v6.to_ipv4_mapped().map_or(peer, Into::into)
        }
        v4 => v4,
    };
    match result {
        Ok(Found::Records(recs)) => {
            let hit = recs.iter().any(|r| match r {
                Rec::A(a) => std::net::IpAddr::from(*a) == ip,
                Rec::Aaaa(a) => std::net::IpAddr::from(*a) == ip,
                _ => false,
            });
            if hit && matched.is_none() {
                *matched = names.get(index).cloned();
            }
        }
        Err(Failure::Timeout | Failure::Server(_) | Failure::Busy) => {
            *temp = true
        }
        _ => {}
    }
    *pending -= 1;
    if *pending == 0 {
        let first = names.first().cloned();
        *state = Iprev::Done(match (matched.take(), *temp) {
            (Some(n), _) => verdict::Iprev {
                result: "pass",
                name: Some(n),
            },
            (None, true) => verdict::Iprev {
                result: "temperror",
                name: first,
            },
            (None, false) => verdict::Iprev {
                result: "fail",
                name: first,
            },
        });
    }
}
