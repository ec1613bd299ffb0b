//! DNS blocklists from the loop: the client's address asked of each
//! `dnsbl` zone at connect, the sender's domain of each `rhsbl` zone at
//! MAIL, the verdict handed to the session for RCPT (554 5.7.1, naming
//! the zone and its TXT reason).
//!
//! A list is used only while its health check passes (at start, then
//! hourly): it must list its test entry and must not list 127.0.0.1
//! (RFC 5782 §5). A list that fails is suspended with a warning, so a
//! dead or hijacked list never refuses everyone. A lookup that fails,
//! and a list's own error code (127.255.255.x), count as not listed.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use log::{info, warn};

use crate::config::spam::Spam;
use crate::proto::dns::cache::Found;
use crate::proto::dns::resolver::Failure;
use crate::proto::dns::wire::{Qtype, Rec};
use crate::proto::dnsbl::{self, Kind, Listing};
use crate::server::Server;
use crate::server::base::timer::{NOBODY, Timer};
use crate::server::outbound::dns::Waiter;
use crate::util::logsafe::Quoted;

use super::check_state::{Ask, AskState, ListAsk, SenderAsks};

const LOG_TARGET: &str = "postling::server::blocklists";

/// How often each list's health is checked again.
const HEALTH_EVERY: Duration = Duration::from_secs(3600);

/// What a list is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The client's address (`dnsbl`).
    Client,
    /// The MAIL FROM domain (`rhsbl`).
    Sender,
    /// The domains of a message's links (`uribl`).
    Link,
}

/// Whether a list may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    /// Not checked yet: a new list is not used until it passes.
    Unknown,
    Healthy,
    Suspended,
}

struct List {
    zone: String,
    role: Role,
    health: Health,
    /// The health check's answers so far (None inside: no answer);
    /// the list keeps its standing until both are in.
    probe: [Option<Option<Listing>>; 2],
}

/// Every configured list, and their health.
pub struct Blocklists {
    lists: Vec<List>,
    /// Tells one sender's lookups from the next transaction's.
    serial: u64,
}

impl Blocklists {
    /// The lists `spam` names, none checked yet.
    pub fn new(spam: &Spam) -> Blocklists {
        let mut lists = Vec::new();
        for (zones, role) in [
            (&spam.dnsbl, Role::Client),
            (&spam.rhsbl, Role::Sender),
            (&spam.uribl, Role::Link),
        ] {
            for zone in zones {
                lists.push(List {
                    zone: zone.clone(),
                    role,
                    health: Health::Unknown,
                    probe: [None, None],
                });
            }
        }
        Blocklists { lists, serial: 0 }
    }

    /// The healthy lists for `role`: index and zone.
    pub(super) fn zones(&self, role: Role) -> Vec<(usize, String)> {
        self.usable(role)
            .into_iter()
            .map(|i| (i, self.lists[i].zone.clone()))
            .collect()
    }

    /// A fresh serial, to tell one message's lookups from the next's.
    pub(super) fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// The healthy lists for `role`, by index.
    fn usable(&self, role: Role) -> Vec<usize> {
        (0..self.lists.len())
            .filter(|&i| {
                self.lists[i].role == role
                    && self.lists[i].health == Health::Healthy
            })
            .collect()
    }
}

impl Server {
    /// Starts each list's health check (at start, then hourly).
    pub(in crate::server) fn check_blocklists(&mut self) {
        let Some(bl) = self.smtp.blocklists.as_mut() else {
            return;
        };
        let mut questions = Vec::new();
        for (i, list) in bl.lists.iter_mut().enumerate() {
            list.probe = [None, None];
            let kind = match list.role {
                Role::Client => Kind::Ip,
                Role::Sender | Role::Link => Kind::Domain,
            };
            for (which, name) in dnsbl::health_queries(kind, &list.zone)
                .into_iter()
                .enumerate()
            {
                questions.push((name, Waiter::Health(i, which)));
            }
        }
        for (name, waiter) in questions {
            self.dns_lookup(&name, Qtype::A, waiter);
        }
        self.core.timers.add(
            Instant::now() + HEALTH_EVERY,
            Timer::Blocklists,
            NOBODY,
        );
    }

    /// One of a list's health questions is answered.
    pub(in crate::server) fn blocklist_health(
        &mut self,
        index: usize,
        which: usize,
        result: Result<Found, Failure>,
    ) {
        let Some(list) = self
            .smtp
            .blocklists
            .as_mut()
            .and_then(|bl| bl.lists.get_mut(index))
        else {
            return;
        };
        let Some(slot) = list.probe.get_mut(which) else {
            return;
        };
        *slot = Some(match result {
            Ok(found) => Some(dnsbl::listing(&addresses(&found))),
            Err(_) => None,
        });
        if list.probe.iter().any(Option::is_none) {
            return; // the other answer is still out
        }
        let [Some(must), Some(must_not)] = std::mem::take(&mut list.probe)
        else {
            return;
        };
        let before = list.health;
        match dnsbl::healthy(must.as_ref(), must_not.as_ref()) {
            Ok(()) => {
                list.health = Health::Healthy;
                if before != Health::Healthy {
                    info!(target: LOG_TARGET, "blocklist {} in use", list.zone);
                }
            }
            Err(why) => {
                list.health = Health::Suspended;
                warn!(target: LOG_TARGET, "blocklist {} suspended: {why}", list.zone);
            }
        }
    }

    /// At connect, for a client that is not trusted: asks each client
    /// list about it, and tells the session to wait for them at RCPT
    /// (and for the sender lists at each MAIL).
    pub(in crate::server) fn ask_client_lists(
        &mut self,
        slot: usize,
        generation: u64,
    ) {
        let Some(peer) = self.live_conn(slot, generation).map(|c| c.peer)
        else {
            return;
        };
        let Some(bl) = self.smtp.blocklists.as_ref() else {
            return;
        };
        let senders = !bl.usable(Role::Sender).is_empty();
        let names: Vec<(usize, String)> = bl
            .usable(Role::Client)
            .into_iter()
            .map(|i| (i, dnsbl::ip_query(peer, &bl.lists[i].zone)))
            .collect();
        let Some(conn) = self.live_conn(slot, generation) else {
            return;
        };
        let Some(s) = conn.session.as_smtp() else {
            return;
        };
        if !s.smtp.is_stranger() {
            return;
        }
        s.smtp.expect_listings(!names.is_empty(), senders);
        s.checks.client_lists = names
            .iter()
            .map(|(list, name)| ListAsk {
                list: *list,
                name: name.clone(),
                state: AskState::Asking,
            })
            .collect();
        for (i, (_, name)) in names.iter().enumerate() {
            let waiter = Waiter::Check(
                slot,
                generation,
                0,
                Ask::Listed {
                    sender: false,
                    index: i,
                },
            );
            self.dns_lookup(name, Qtype::A, waiter);
        }
    }

    /// After each feed: a new transaction's sender is asked about.
    pub(in crate::server) fn ask_sender_lists(&mut self, slot: usize) {
        let Some(bl) = self.smtp.blocklists.as_mut() else {
            return;
        };
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let generation = conn.generation;
        let Some(s) = conn.session.as_smtp() else {
            return;
        };
        let Some((id, from)) = s.smtp.transaction() else {
            return;
        };
        if !s.smtp.awaits_listings()
            || s.checks.sender_lists.as_ref().is_some_and(|a| a.id == id)
        {
            return;
        }
        let sender = from.to_string();
        let domain =
            sender.rsplit_once('@').map_or("", |(_, d)| d).to_string();
        bl.serial += 1;
        let asks: Vec<ListAsk> = bl
            .usable(Role::Sender)
            .into_iter()
            .filter_map(|list| {
                let name = dnsbl::domain_query(&domain, &bl.lists[list].zone)?;
                Some(ListAsk {
                    list,
                    name,
                    state: AskState::Asking,
                })
            })
            .collect();
        let serial = bl.serial;
        let names: Vec<String> = asks.iter().map(|a| a.name.clone()).collect();
        s.checks.sender_lists = Some(Box::new(SenderAsks {
            serial,
            id: id.to_string(),
            sender,
            asks,
        }));
        for (i, name) in names.iter().enumerate() {
            let waiter = Waiter::Check(
                slot,
                generation,
                serial,
                Ask::Listed {
                    sender: true,
                    index: i,
                },
            );
            self.dns_lookup(name, Qtype::A, waiter);
        }
        self.listings_progress(slot, generation);
    }

    /// A list's answer (its A records, or the TXT reason) came.
    pub(in crate::server) fn listing_answered(
        &mut self,
        (slot, generation, serial): (usize, u64, u64),
        sender: bool,
        index: usize,
        result: Result<Found, Failure>,
    ) {
        let Some(bl) = self.smtp.blocklists.as_ref() else {
            return;
        };
        let zones = &bl.lists;
        // The fields apart, not live_conn: the lists stay borrowed.
        let Some(conn) = self
            .core
            .conn_mut(slot)
            .filter(|c| c.generation == generation)
        else {
            return;
        };
        let Some(s) = conn.session.as_smtp() else {
            return;
        };
        let asks = match sender {
            false => &mut s.checks.client_lists,
            true => match s.checks.sender_lists.as_mut() {
                Some(a) if a.serial == serial => &mut a.asks,
                _ => return, // an earlier transaction's
            },
        };
        let Some(ask) = asks.get_mut(index) else {
            return;
        };
        let zone = zones.get(ask.list).map_or("", |l| l.zone.as_str());
        let mut reason_wanted = false;
        ask.state = match (&ask.state, result) {
            (AskState::Asking, Ok(found)) => {
                match listed(zone, &ask.name, &found) {
                    false => AskState::Done(None),
                    true => {
                        reason_wanted = true;
                        AskState::Reason
                    }
                }
            }
            (AskState::Asking, Err(_)) => AskState::Done(None),
            (AskState::Reason, result) => {
                let texts = match result {
                    Ok(Found::Records(recs)) => recs
                        .into_iter()
                        .filter_map(|r| match r {
                            Rec::Txt(t) => Some(t),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                AskState::Done(Some(dnsbl::reason(&texts).unwrap_or_default()))
            }
            (AskState::Done(d), _) => AskState::Done(d.clone()),
        };
        if reason_wanted {
            let name = ask.name.clone();
            let waiter = Waiter::Check(
                slot,
                generation,
                serial,
                Ask::Listed { sender, index },
            );
            return self.dns_lookup(&name, Qtype::Txt, waiter);
        }
        self.listings_progress(slot, generation);
    }

    /// Once every list has answered: the session's verdict, and RCPT
    /// read again if it waited.
    fn listings_progress(&mut self, slot: usize, generation: u64) {
        let Some(bl) = self.smtp.blocklists.as_ref() else {
            return;
        };
        let zones = &bl.lists;
        // The fields apart, not live_conn: the lists stay borrowed.
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
        let waited = s.smtp.awaits_listings();
        if let Some(found) = verdict(&s.checks.client_lists, zones) {
            let text = found.map(|(zone, reason)| {
                refusal(
                    &format!("Client host [{}]", shown(peer)),
                    zone,
                    reason,
                )
            });
            s.smtp.client_listed(text);
        }
        if let Some(asks) = s.checks.sender_lists.as_ref()
            && let Some(found) = verdict(&asks.asks, zones)
        {
            let text = found.map(|(zone, reason)| {
                refusal(
                    &format!("Sender address [{}]", asks.sender),
                    zone,
                    reason,
                )
            });
            let id = asks.id.clone();
            s.smtp.sender_listed(&id, text);
        }
        if waited && !s.smtp.awaits_listings() {
            self.resume(slot);
        }
    }
}

/// None while answers are out; then the first listing, in the order the
/// lists are configured, or Some(None) for none.
fn verdict<'a>(
    asks: &'a [ListAsk],
    zones: &'a [List],
) -> Option<Option<(&'a str, &'a str)>> {
    let mut first = None;
    for ask in asks {
        match &ask.state {
            AskState::Done(Some(reason)) if first.is_none() => {
                let zone = zones.get(ask.list).map_or("", |l| l.zone.as_str());
                first = Some((zone, reason.as_str()));
            }
            AskState::Done(_) => {}
            _ => return None,
        }
    }
    Some(first)
}

/// Postfix's wording, so that what senders and log readers know holds.
fn refusal(who: &str, zone: &str, reason: &str) -> String {
    match reason.is_empty() {
        true => format!("Service unavailable; {who} blocked using {zone}"),
        false => format!(
            "Service unavailable; {who} blocked using {zone}; {reason}"
        ),
    }
}

/// An address as a client is shown it (a v4 client on a v6 socket as v4).
fn shown(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The A records of an answer (NXDOMAIN and no data: none).
/// True if `zone` lists `name` by these records (logged); its own
/// error code (127.255.255.x) is logged and is no listing.
pub(super) fn listed(zone: &str, name: &str, found: &Found) -> bool {
    match dnsbl::listing(&addresses(found)) {
        Listing::NotListed => false,
        Listing::Listed(codes) => {
            info!(target: LOG_TARGET, "{} listed by {zone} ({})", Quoted(name), codes_text(&codes));
            true
        }
        Listing::ListError(code) => {
            warn!(
                target: LOG_TARGET,
                "blocklist {zone} answered {code} (its own error: a public resolver, or over quota) for {}: ignored",
                Quoted(name)
            );
            false
        }
    }
}

fn addresses(found: &Found) -> Vec<Ipv4Addr> {
    match found {
        Found::Records(recs) => recs
            .iter()
            .filter_map(|r| match r {
                Rec::A(a) => Some(*a),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The codes, in order (DNS gives them in any).
fn codes_text(codes: &[Ipv4Addr]) -> String {
    let mut codes = codes.to_vec();
    codes.sort();
    codes
        .iter()
        .map(Ipv4Addr::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
