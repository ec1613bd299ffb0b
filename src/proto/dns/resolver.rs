//! The resolver's state machine. The loop owns the sockets: it sends
//! what `Send` says (each query from a new UDP socket, so from a random
//! port the kernel picks, or over TCP after a truncated answer) and
//! hands back what comes from the server asked; the resolver matches
//! answers to questions, retries across servers, follows CNAMEs and
//! keeps a bounded cache.

use std::collections::HashMap;
use std::net::SocketAddr;

use ring::rand::{SecureRandom, SystemRandom};

use super::cache::{Cache, Found};
use super::wire::{self, Qtype, Said};

/// How long one try over UDP may take, in milliseconds (the loop's
/// clock: times here are milliseconds since it started).
const UDP_WAIT: u64 = 2_000;
/// And over TCP.
const TCP_WAIT: u64 = 5_000;
/// CNAMEs followed at most.
const MAX_ALIASES: u8 = 8;
/// Lookups under way at most; more fail at once.
pub const MAX_LOOKUPS: usize = 1_000;

/// Why a lookup found nothing to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No server answered in time.
    Timeout,
    /// The servers answered SERVFAIL, REFUSED or the like.
    Server(&'static str),
    /// Not a name we can ask for.
    BadName,
    /// Too many lookups at once, or no servers.
    Busy,
}

/// What the loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Send this query for lookup `key` to `server`, over TCP or from a
    /// new UDP socket; drop any socket the lookup had.
    Send {
        /// The lookup.
        key: u64,
        /// Where to.
        server: SocketAddr,
        /// The query.
        bytes: Vec<u8>,
        /// Over TCP (length-prefixed).
        tcp: bool,
    },
    /// The lookup is over; drop its socket.
    Done {
        /// The lookup.
        key: u64,
        /// What was found.
        result: Result<Found, Failure>,
    },
}

#[derive(Debug)]
struct Lookup {
    /// The name first asked (the cache keeps the answer under it too).
    asked: String,
    /// The name now asked, after CNAMEs.
    name: String,
    qtype: Qtype,
    id: u16,
    /// Tries made; the server is `tries % servers`.
    tries: usize,
    deadline: u64,
    tcp: bool,
    aliases: u8,
}

/// The resolver.
#[derive(Debug)]
pub struct Resolver {
    servers: Vec<SocketAddr>,
    lookups: HashMap<u64, Lookup>,
    cache: Cache,
    next: u64,
    /// The lookup asking for each name and type now: a second asker
    /// waits for its answer instead of asking again.
    asking: HashMap<(String, Qtype), u64>,
    /// Lookups waiting on another's answer, by that lookup.
    followers: HashMap<u64, Vec<u64>>,
}

impl Resolver {
    /// A resolver asking these servers, in order.
    pub fn new(servers: Vec<SocketAddr>) -> Resolver {
        Resolver {
            servers,
            lookups: HashMap::new(),
            cache: Cache::default(),
            next: 0,
            asking: HashMap::new(),
            followers: HashMap::new(),
        }
    }

    /// Starts a lookup; its key, and what to do (a `Done` at once when
    /// the cache knows).
    pub fn lookup(
        &mut self,
        name: &str,
        qtype: Qtype,
        now: u64,
    ) -> (u64, Vec<Event>) {
        self.next += 1;
        let key = self.next;
        let Some(name) = wire::normalize(name) else {
            return (key, vec![done(key, Err(Failure::BadName))]);
        };
        if let Some(found) = self.cache.get(&name, qtype, now) {
            return (key, vec![done(key, Ok(found))]);
        }
        if let Some(&leader) = self.asking.get(&(name.clone(), qtype))
            && self.lookups.contains_key(&leader)
        {
            // The same question is out: its answer serves both.
            self.followers.entry(leader).or_default().push(key);
            return (key, Vec::new());
        }
        if self.servers.is_empty() || self.lookups.len() >= MAX_LOOKUPS {
            return (key, vec![done(key, Err(Failure::Busy))]);
        }
        if self.asking.len() >= 2 * MAX_LOOKUPS {
            let lookups = &self.lookups;
            self.asking.retain(|_, k| lookups.contains_key(k));
        }
        self.asking.insert((name.clone(), qtype), key);
        let l = Lookup {
            asked: name.clone(),
            name,
            qtype,
            id: 0,
            tries: 0,
            deadline: now,
            tcp: false,
            aliases: 0,
        };
        self.lookups.insert(key, l);
        let events = self.send(key, now).into_iter().collect();
        (key, self.fan_out(events))
    }

    /// Every answer also goes to the lookups that waited for it.
    fn fan_out(&mut self, events: Vec<Event>) -> Vec<Event> {
        let mut out = Vec::with_capacity(events.len());
        for ev in events {
            if let Event::Done { key, result } = &ev {
                for f in self.followers.remove(key).unwrap_or_default() {
                    out.push(done(f, result.clone()));
                }
            }
            out.push(ev);
        }
        out
    }

    /// Forgets a lookup nobody waits for any more.
    pub fn cancel(&mut self, key: u64) {
        self.lookups.remove(&key);
    }

    /// The next moment a try runs out.
    pub fn next_deadline(&self) -> Option<u64> {
        self.lookups.values().map(|l| l.deadline).min()
    }

    /// Tries that ran out: the next server, or the end.
    pub fn expire(&mut self, now: u64) -> Vec<Event> {
        let late: Vec<u64> = self
            .lookups
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        let mut events = Vec::new();
        for key in late {
            events.extend(self.retry(key, now, Failure::Timeout));
        }
        self.fan_out(events)
    }

    /// The server of lookup `key`'s try refused it at once (an ICMP
    /// port unreachable on its socket): the next try now, not at its
    /// deadline, so a resolver that is down fails fast.
    pub fn refused(&mut self, key: u64, now: u64) -> Vec<Event> {
        let events = self.retry(key, now, Failure::Server("unreachable"));
        self.fan_out(events)
    }

    /// A datagram (or TCP answer) for lookup `key` from `from`.
    pub fn received(
        &mut self,
        key: u64,
        from: SocketAddr,
        bytes: &[u8],
        now: u64,
    ) -> Vec<Event> {
        let events = self.answered(key, from, bytes, now);
        self.fan_out(events)
    }

    fn answered(
        &mut self,
        key: u64,
        from: SocketAddr,
        bytes: &[u8],
        now: u64,
    ) -> Vec<Event> {
        let Some(l) = self.lookups.get(&key) else {
            return Vec::new();
        };
        // Only the server asked, answering the question asked.
        if from != self.servers[l.tries.saturating_sub(1) % self.servers.len()]
        {
            return Vec::new();
        }
        let Some(said) = wire::answer(bytes, l.id, &l.name, l.qtype) else {
            return Vec::new();
        };
        match said {
            Said::Records(recs, ttl) => {
                self.finish(key, Found::Records(recs), ttl, now)
            }
            Said::NoData(ttl) => self.finish(key, Found::NoData, ttl, now),
            Said::NxDomain(ttl) => self.finish(key, Found::NxDomain, ttl, now),
            Said::Failed(why) => self.retry(key, now, Failure::Server(why)),
            Said::Truncated => {
                if let Some(l) = self.lookups.get_mut(&key)
                    && !l.tcp
                {
                    l.tcp = true;
                    l.tries = l.tries.saturating_sub(1);
                }
                self.send(key, now).into_iter().collect()
            }
            Said::Alias(target) => {
                let Some(l) = self.lookups.get_mut(&key) else {
                    return Vec::new();
                };
                l.aliases += 1;
                if l.aliases > MAX_ALIASES {
                    self.lookups.remove(&key);
                    return vec![done(
                        key,
                        Err(Failure::Server("CNAME loop")),
                    )];
                }
                if let Some(found) = self.cache.get(&target, l.qtype, now) {
                    self.lookups.remove(&key);
                    return vec![done(key, Ok(found))];
                }
                l.name = target;
                l.tries = 0;
                l.tcp = false;
                self.send(key, now).into_iter().collect()
            }
        }
    }

    fn finish(
        &mut self,
        key: u64,
        found: Found,
        ttl: u32,
        now: u64,
    ) -> Vec<Event> {
        if let Some(l) = self.lookups.remove(&key) {
            self.cache.put(&l.name, l.qtype, found.clone(), ttl, now);
            if l.asked != l.name {
                self.cache.put(&l.asked, l.qtype, found.clone(), ttl, now);
            }
        }
        vec![done(key, Ok(found))]
    }

    /// The last try failed: the next one, or the end.
    fn retry(&mut self, key: u64, now: u64, why: Failure) -> Vec<Event> {
        let Some(l) = self.lookups.get(&key) else {
            return Vec::new();
        };
        // Every server twice.
        if l.tries >= self.servers.len() * 2 {
            self.lookups.remove(&key);
            return vec![done(key, Err(why))];
        }
        self.send(key, now).into_iter().collect()
    }

    /// The next try of lookup `key`: a fresh id, the next server.
    fn send(&mut self, key: u64, now: u64) -> Option<Event> {
        let n = self.servers.len();
        let l = self.lookups.get_mut(&key)?;
        l.id = random_id();
        let server = self.servers[l.tries % n];
        l.tries += 1;
        l.deadline = now + if l.tcp { TCP_WAIT } else { UDP_WAIT };
        let Some(bytes) = wire::query(l.id, &l.name, l.qtype) else {
            self.lookups.remove(&key);
            return Some(done(key, Err(Failure::BadName)));
        };
        Some(Event::Send {
            key,
            server,
            bytes,
            tcp: l.tcp,
        })
    }

    /// Cached answers held.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }
}

fn done(key: u64, result: Result<Found, Failure>) -> Event {
    Event::Done { key, result }
}

/// A query id no one outside can guess.
fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // The system's generator does not fail on Linux; a fixed id would
    // still be checked against the question and the source.
    let _ = SystemRandom::new().fill(&mut b);
    u16::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::dns::wire::{Rec, test_reply};
    use hickory_proto::op::Message;
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::A;
    use std::net::Ipv4Addr;

    fn servers() -> Vec<SocketAddr> {
        vec![
            "127.0.0.1:5301".parse().unwrap(),
            "127.0.0.1:5302".parse().unwrap(),
        ]
    }

    fn sent(events: &[Event]) -> (u64, SocketAddr, u16, bool) {
        match &events[0] {
            Event::Send {
                key,
                server,
                bytes,
                tcp,
            } => (
                *key,
                *server,
                Message::from_vec(bytes).unwrap().metadata.id,
                *tcp,
            ),
            other => panic!("{other:?}"),
        }
    }

    fn a_reply(id: u16, name: &str, truncated: bool) -> Vec<u8> {
        test_reply(
            id,
            name,
            Qtype::A,
            vec![(name.into(), RData::A(A(Ipv4Addr::new(192, 0, 2, 7))))],
            truncated,
        )
    }

    #[test]
    fn answered_cached_and_spoof_resistant() {
        let now = 1_000u64;
        let mut r = Resolver::new(servers());
        let (key, ev) = r.lookup("Host.Example", Qtype::A, now);
        let (_, server, id, tcp) = sent(&ev);
        assert_eq!(server, servers()[0]);
        assert!(!tcp);
        // From the wrong server, or with the wrong id: ignored.
        assert!(
            r.received(
                key,
                servers()[1],
                &a_reply(id, "host.example", false),
                now
            )
            .is_empty()
        );
        assert!(
            r.received(
                key,
                server,
                &a_reply(id.wrapping_add(1), "host.example", false),
                now
            )
            .is_empty()
        );
        let ev =
            r.received(key, server, &a_reply(id, "host.example", false), now);
        assert_eq!(
            ev,
            vec![Event::Done {
                key,
                result: Ok(Found::Records(vec![Rec::A(Ipv4Addr::new(
                    192, 0, 2, 7
                ))]))
            }]
        );
        // Now from the cache, at once.
        let (k2, ev) = r.lookup("host.example", Qtype::A, now);
        assert!(
            matches!(&ev[..], [Event::Done { key, result: Ok(_) }] if *key == k2)
        );
    }

    #[test]
    fn the_same_question_asked_twice_goes_out_once() {
        let now = 1_000u64;
        let mut r = Resolver::new(servers());
        let (first, ev) = r.lookup("mx.example", Qtype::A, now);
        let (_, server, id, _) = sent(&ev);
        let (second, ev) = r.lookup("MX.example.", Qtype::A, now);
        assert!(ev.is_empty(), "{ev:?}");
        // Another type is another question.
        let (_, ev) = r.lookup("mx.example", Qtype::Aaaa, now);
        assert_eq!(ev.len(), 1);
        let ev =
            r.received(first, server, &a_reply(id, "mx.example", false), now);
        let keys: Vec<u64> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Done { key, result: Ok(_) } => Some(*key),
                _ => None,
            })
            .collect();
        assert_eq!(keys, vec![second, first]);
    }

    #[test]
    fn timeouts_move_to_the_next_server_then_fail() {
        let now = 1_000u64;
        let mut r = Resolver::new(servers());
        let (key, ev) = r.lookup("slow.example", Qtype::A, now);
        assert_eq!(sent(&ev).1, servers()[0]);
        let mut t = now;
        let mut servers_asked = vec![servers()[0]];
        loop {
            t += UDP_WAIT;
            let ev = r.expire(t);
            match &ev[..] {
                [Event::Send { server, .. }] => servers_asked.push(*server),
                [Event::Done { key: k, result }] => {
                    assert_eq!(*k, key);
                    assert_eq!(result, &Err(Failure::Timeout));
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            servers_asked,
            vec![servers()[0], servers()[1], servers()[0], servers()[1]]
        );
        assert!(r.next_deadline().is_none());
    }

    #[test]
    fn truncated_goes_to_tcp() {
        let now = 1_000u64;
        let mut r = Resolver::new(servers());
        let (key, ev) = r.lookup("big.example", Qtype::A, now);
        let (_, server, id, _) = sent(&ev);
        let ev =
            r.received(key, server, &a_reply(id, "big.example", true), now);
        let (_, again, id2, tcp) = sent(&ev);
        assert!(tcp);
        assert_eq!(again, server);
        let ev =
            r.received(key, server, &a_reply(id2, "big.example", false), now);
        assert!(matches!(&ev[..], [Event::Done { result: Ok(_), .. }]));
    }

    #[test]
    fn bad_names_fail_at_once() {
        let mut r = Resolver::new(servers());
        let (_, ev) = r.lookup("", Qtype::Mx, 0);
        assert!(matches!(
            &ev[..],
            [Event::Done {
                result: Err(Failure::BadName),
                ..
            }]
        ));
        let mut none = Resolver::new(Vec::new());
        let (_, ev) = none.lookup("a.example", Qtype::Mx, 0);
        assert!(matches!(
            &ev[..],
            [Event::Done {
                result: Err(Failure::Busy),
                ..
            }]
        ));
    }
}
