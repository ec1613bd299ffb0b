//! The loop's side of the checks before content (the session's
//! `screen`): which clients were screened and passed (remembered for a
//! day, so they are greeted at once), the greeting's delay, and the log
//! line of a client refused.
//!
//! The passes are kept in `{data_dir}/screened` (as Postfix's
//! postscreen keeps its cache), so a restart does not make every known
//! client wait through the delay again: written by a durability helper
//! at most every 10 minutes when they changed, and at shutdown; a crash
//! loses at most those minutes (a client then waits once more).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log::{error, info, warn};

use crate::config::Config;
use crate::server::Server;
use crate::server::base::timer::{NOBODY, Timer};
use crate::server::base::writer::Task;

const LOG_TARGET: &str = "postling::server::screen";

/// How long a client that passed is greeted at once, in seconds.
const PASS_KEPT: u64 = 24 * 3600;
/// Clients remembered at most (about 40 octets each): past it the
/// expired go, and if none has, the oldest half.
const MAX_REMEMBERED: usize = 20_000;
/// How often changed passes are written out, at most, in seconds.
const SAVE_EVERY: u64 = 600;

/// Where the passes are kept.
pub fn file(data_dir: &Path) -> PathBuf {
    data_dir.join("screened")
}

fn unix_now() -> u64 {
    crate::util::date::now_secs().max(0) as u64
}

/// Clients (addresses; IPv6 by prefix) that passed, with when (Unix
/// seconds).
#[derive(Default)]
pub struct Passed {
    clients: HashMap<IpAddr, u64>,
    /// Changed since they were last written.
    dirty: bool,
    saved_at: u64,
}

impl Passed {
    /// The passes kept in `config`'s data_dir, if the checks before
    /// content are on and any were kept.
    pub fn open(config: &Config) -> Passed {
        let mut passed = Passed::default();
        if config.spam.greet_delay == 0 {
            return passed;
        }
        let path = file(&config.data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                passed.load(&bytes, unix_now());
                info!(target: LOG_TARGET, "{} screened clients loaded", passed.clients.len());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => error!(target: LOG_TARGET, "{}: {e}", path.display()),
        }
        passed.saved_at = unix_now();
        passed
    }

    /// True if `client` passed within a day.
    pub fn knows(&self, client: IpAddr, now: u64) -> bool {
        self.clients
            .get(&client)
            .is_some_and(|&at| now.saturating_sub(at) < PASS_KEPT)
    }

    fn remember(&mut self, client: IpAddr, now: u64) {
        if !self.clients.contains_key(&client) {
            crate::util::bounded::make_room(
                &mut self.clients,
                MAX_REMEMBERED,
                now.saturating_sub(PASS_KEPT),
            );
        }
        self.clients.insert(client, now);
        self.dirty = true;
    }

    /// A line per client: `ADDRESS SECONDS`.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(self.clients.len() * 28);
        for (ip, at) in &self.clients {
            out.push_str(&format!("{ip} {at}\n"));
        }
        out.into_bytes()
    }

    /// What [`to_bytes`](Self::to_bytes) wrote, less what has expired
    /// by `now` (or is from the future); lines that do not read, and
    /// those past the bound, are passed over.
    fn load(&mut self, bytes: &[u8], now: u64) {
        let text = String::from_utf8_lossy(bytes);
        for line in text.lines() {
            if self.clients.len() >= MAX_REMEMBERED {
                break;
            }
            let Some((ip, at)) = line.split_once(' ') else {
                continue;
            };
            let (Ok(ip), Ok(at)) = (ip.parse::<IpAddr>(), at.parse::<u64>())
            else {
                continue;
            };
            if at <= now && now - at < PASS_KEPT {
                self.clients.insert(ip, at);
            }
        }
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
        if delay == 0 || self.smtp.passed.knows(client, unix_now()) {
            return false;
        }
        self.core.timers.add(
            Instant::now() + Duration::from_secs(delay),
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
            self.smtp.passed.remember(client, unix_now());
        }
    }

    /// Changed passes go to a durability helper, at most every
    /// [`SAVE_EVERY`] seconds.
    pub(in crate::server) fn save_passed(&mut self) {
        let now = unix_now();
        let passed = &mut self.smtp.passed;
        if !passed.dirty || now.saturating_sub(passed.saved_at) < SAVE_EVERY {
            return;
        }
        passed.dirty = false;
        passed.saved_at = now;
        let path = file(&self.services.config.data_dir);
        let bytes = passed.to_bytes();
        self.core.writer.send((Task::Save { path, bytes }, NOBODY));
    }

    /// At shutdown: written here, the helpers being stopped.
    pub(in crate::server) fn save_passed_now(&mut self) {
        let path = file(&self.services.config.data_dir);
        if self.smtp.passed.dirty
            && let Err(e) = crate::util::fs::atomic_write(
                &path,
                &self.smtp.passed.to_bytes(),
            )
        {
            error!(target: LOG_TARGET, "screened clients not saved: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_for_a_day_and_bounded() {
        let mut p = Passed::default();
        let t0 = 1_800_000_000;
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(!p.knows(ip, t0));
        p.remember(ip, t0);
        assert!(p.knows(ip, t0 + 3600));
        assert!(!p.knows(ip, t0 + PASS_KEPT));
        for i in 0..(MAX_REMEMBERED as u32 + 10) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            p.remember(ip, t0 + u64::from(i) / 100);
        }
        assert!(p.clients.len() <= MAX_REMEMBERED);
        let newest = IpAddr::from(std::net::Ipv4Addr::from(
            0x0a00_0000 + MAX_REMEMBERED as u32 + 9,
        ));
        assert!(p.knows(newest, t0 + 600));
    }

    #[test]
    fn kept_and_read_back_without_the_expired() {
        let t0 = 1_800_000_000;
        let mut p = Passed::default();
        let (v4, v6): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "2001:db8::".parse().unwrap());
        let old: IpAddr = "192.0.2.9".parse().unwrap();
        p.remember(old, t0);
        p.remember(v4, t0 + 20 * 3600);
        p.remember(v6, t0 + 23 * 3600);
        assert!(p.dirty);
        let mut back = Passed::default();
        back.load(&p.to_bytes(), t0 + PASS_KEPT + 60);
        assert!(back.knows(v4, t0 + PASS_KEPT + 60));
        assert!(back.knows(v6, t0 + PASS_KEPT + 60));
        assert!(!back.clients.contains_key(&old), "expired, not loaded");
        assert!(!back.dirty);
        // A damaged file: what reads is kept, the rest passed over.
        let mut damaged = Passed::default();
        damaged.load(
            b"nonsense\n192.0.2.1 x\n\xff\xfe 1\n192.0.2.1 1800000000\n2001:db8:: 9999999999\n",
            t0 + 60,
        );
        assert_eq!(damaged.clients.len(), 1, "the future one is not kept");
    }
}
