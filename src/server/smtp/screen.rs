//! The loop's side of the checks before content (the session's
//! `screen`): which clients were screened and passed (remembered for a
//! day, so they are greeted at once), the greeting's delay, and the log
//! line of a client refused.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use log::{info, warn};

use crate::server::Server;
use crate::server::base::timer::Timer;

const LOG_TARGET: &str = "postling::server::screen";

/// How long a client that passed is greeted at once.
const PASS_KEPT: Duration = Duration::from_secs(24 * 3600);
/// Clients remembered at most (about 40 octets each): past it the
/// expired go, and if none has, the oldest half.
const MAX_REMEMBERED: usize = 20_000;

/// Clients (addresses; IPv6 by prefix) that passed, with when.
#[derive(Default)]
pub struct Passed {
    clients: HashMap<IpAddr, Instant>,
}

impl Passed {
    /// True if `client` passed within a day.
    pub fn knows(&self, client: IpAddr, now: Instant) -> bool {
        self.clients
            .get(&client)
            .is_some_and(|&at| now.duration_since(at) < PASS_KEPT)
    }

    fn remember(&mut self, client: IpAddr, now: Instant) {
        if !self.clients.contains_key(&client) {
            let stale = now.checked_sub(PASS_KEPT).unwrap_or(now);
            crate::util::bounded::make_room(
                &mut self.clients,
                MAX_REMEMBERED,
                stale,
            );
        }
        self.clients.insert(client, now);
    }
}

impl Server {
    /// A new connection on port 25 from a client that is not trusted:
    /// true if it is to be screened (its greeting begun, its end due
    /// after `greet_delay`).
    pub(in crate::server) fn screen_new(
        &mut self,
        slot: usize,
        generation: u64,
        client: IpAddr,
    ) -> bool {
        let delay = self.services.config.spam.greet_delay;
        let now = Instant::now();
        if delay == 0 || self.smtp.passed.knows(client, now) {
            return false;
        }
        self.core.timers.add(
            now + Duration::from_secs(delay),
            Timer::Greeting,
            (slot, generation),
        );
        true
    }

    /// The greeting's delay is over.
    pub(in crate::server) fn greeting_due(
        &mut self,
        (slot, generation): (usize, u64),
    ) {
        let Some(conn) = self.live_conn(slot, generation) else {
            return;
        };
        if let Some(s) = conn.session.as_smtp() {
            s.smtp.end_greeting(&mut conn.wbuf);
        }
        self.drive(slot);
    }

    /// After each feed: a client that passed is remembered; one refused
    /// is logged (the session has closed it).
    pub(in crate::server) fn watch_screen(&mut self, slot: usize) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let (id, peer, client) = (conn.id, conn.peer, conn.client);
        let Some(s) = conn.session.as_smtp() else {
            return;
        };
        if let Some(why) = s.smtp.screen_failed() {
            if !std::mem::replace(&mut s.checks.screen_logged, true) {
                warn!(target: LOG_TARGET, "conn={id} ip={peer} refused before content: {why}");
            }
            return;
        }
        if s.smtp.screen_passed()
            && !std::mem::replace(&mut s.checks.screen_logged, true)
        {
            info!(target: LOG_TARGET, "conn={id} ip={peer} passed the checks before content");
            self.smtp.passed.remember(client, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_for_a_day_and_bounded() {
        let mut p = Passed::default();
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(!p.knows(ip, t0));
        p.remember(ip, t0);
        assert!(p.knows(ip, t0 + Duration::from_secs(3600)));
        assert!(!p.knows(ip, t0 + PASS_KEPT));
        for i in 0..(MAX_REMEMBERED as u32 + 10) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            p.remember(ip, t0 + Duration::from_millis(u64::from(i)));
        }
        assert!(p.clients.len() <= MAX_REMEMBERED);
        let newest = IpAddr::from(std::net::Ipv4Addr::from(
            0x0a00_0000 + MAX_REMEMBERED as u32 + 9,
        ));
        assert!(p.knows(newest, t0 + Duration::from_secs(60)));
    }
}
