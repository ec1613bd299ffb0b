//! Logins, for every service. Here the loop's side: handing
//! credentials to the password helpers ([`checkers`]), answering when
//! they are checked (at once on success, after the fixed delay on
//! failure), and locking out addresses that keep failing.

pub mod checkers;

use crate::server::base::stats::Event;
use std::time::Instant;

use crate::util::logsafe::Quoted;
use log::{info, warn};

use crate::auth::limiter::Key;
use crate::config::Config;
use crate::proto::sasl::Credentials;
use crate::server::base::conn::Phase;
use crate::server::base::timer::Timer;
use crate::server::logins::checkers::{Check, Checked};
use crate::server::session::{Client, Session};
use crate::server::{AUTH_FAILURE_DELAY, Server};

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::auth";

impl Server {
    /// Hands a login to the password helpers; the session waits.
    pub(in crate::server) fn check_login(
        &mut self,
        slot: usize,
        credentials: Credentials,
    ) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        conn.phase = Phase::Authenticating;
        let user = credentials.user.to_lowercase();
        let limit_key = login_key(&self.services.config, conn, &user);
        conn.login_key = Some(limit_key.clone());
        if self.services.limiter.blocked(limit_key, Instant::now()) {
            // A front end's client (or user name) that is locked out:
            // refused without a password check.
            warn!(target: LOG_TARGET,
                "conn={} {} locked out: too many authentication failures",
                conn.id,
                client_fields(conn, &user)
            );
            conn.session.locked_out(&mut conn.wbuf);
            conn.phase = Phase::Closing;
            self.flush(slot);
            return;
        }
        let key = (slot, conn.generation);
        let pop3 = matches!(conn.session, Session::Pop3(_));
        let stored =
            self.services.directory.password(&user).map(str::to_string);
        let open = pop3.then(|| self.mailbox_to_open(&user));
        // A webmail logs in again on every page: a login verified lately
        // needs no hashing.
        let now = Instant::now();
        let cache = &mut self.services.auth_cache;
        let tag = stored
            .as_deref()
            .map(|s| cache.tag(&user, &credentials.password, s));
        let cached = tag.is_some_and(|t| cache.verified(&user, &t, now));
        self.logins.send(Check {
            key,
            user,
            password: credentials.password,
            stored,
            started: now,
            open,
            cached,
            tag,
        });
    }

    pub(in crate::server) fn finish_logins(&mut self) {
        let checked: Vec<Checked> = self.logins.finished().collect();
        for Checked {
            key: (slot, generation),
            user,
            ok,
            started,
            snapshot,
            verified,
            cached,
        } in checked
        {
            if let Some(tag) = verified {
                self.services
                    .auth_cache
                    .remember(&user, tag, Instant::now());
            }
            let Some(conn) = self.core.conn_mut(slot) else {
                continue;
            };
            if conn.generation != generation {
                continue;
            }
            if !ok {
                warn!(target: LOG_TARGET,
                    "conn={} auth failed {}",
                    conn.id,
                    client_fields(conn, &user)
                );
                let limit_key =
                    conn.login_key.clone().unwrap_or(Key::Addr(conn.client));
                self.services.limiter.fail(limit_key, Instant::now());
                self.services
                    .stats
                    .add(Event::LoginFailed, 1, Instant::now());
                let due = started + AUTH_FAILURE_DELAY;
                self.core.timers.add(
                    due,
                    Timer::LoginFailure,
                    (slot, generation),
                );
                continue;
            }
            let how = if cached { " cached=yes" } else { "" };
            info!(target: LOG_TARGET,
                "conn={} auth ok {}{how}",
                conn.id,
                client_fields(conn, &user)
            );
            match &mut conn.session {
                Session::Smtp(s) => {
                    s.smtp.authenticated(Some(user), &mut conn.wbuf);
                    conn.phase = Phase::Open;
                }
                Session::Pop3(_) => self.pop3_logged_in(slot, user, snapshot),
                Session::Imap(_) => {
                    self.imap_logged_in(slot, user);
                    continue;
                }
                Session::Sieve(s) => {
                    s.logged_in(Some(user), &mut conn.wbuf);
                    conn.phase = Phase::Open;
                }
                // The web listener has no logins.
                Session::Http(_) => {}
            }
            self.feed(slot, 0);
            self.drive(slot);
        }
    }

    /// Sends a delayed 535 whose time has come; locks out repeat
    /// offenders.
    pub(in crate::server) fn answer_failure(
        &mut self,
        (slot, generation): (usize, u64),
        now: Instant,
    ) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        if conn.generation != generation {
            return;
        }
        conn.session.login_failed(&mut conn.wbuf);
        conn.phase = Phase::Open;
        let limit_key =
            conn.login_key.clone().unwrap_or(Key::Addr(conn.client));
        if self.services.limiter.blocked(limit_key, now) {
            warn!(target: LOG_TARGET,
                "conn={} ip={} locked out: too many authentication failures",
                conn.id,
                conn.session.forwarded().unwrap_or(conn.peer)
            );
            conn.session.locked_out(&mut conn.wbuf);
            conn.phase = Phase::Closing;
            self.flush(slot);
            return;
        }
        self.feed(slot, 0);
        self.drive(slot);
    }
}

/// Whom a login's failure counts against: the client a trusted front
/// end named; for a front end that named none, the user name (a webmail
/// must not be locked out, and every user with it, by one user's typos);
/// else the connection's own client address.
fn login_key(cfg: &Config, conn: &Client, user: &str) -> Key {
    match (conn.session.forwarded(), cfg.is_login_trusted(conn.peer)) {
        (Some(ip), true) => {
            Key::Addr(crate::config::net::client_key(ip, cfg.ipv6_prefix_len))
        }
        (None, true) => Key::User(user.to_string()),
        _ => Key::Addr(conn.client),
    }
}

/// `user=... ip=...` for login log lines: the client a front end named
/// as `ip`, with the front end as `via` (what fail2ban bans is `ip`).
fn client_fields(conn: &Client, user: &str) -> String {
    match conn.session.forwarded() {
        Some(ip) => format!("user={} ip={ip} via={}", Quoted(user), conn.peer),
        None => format!("user={} ip={}", Quoted(user), conn.peer),
    }
}
