//! The loop's side of logins: handing credentials to the password
//! helpers, answering when they are checked (at once on success, after
//! the fixed delay on failure), and locking out addresses that keep
//! failing.

use std::time::Instant;

use crate::util::logsafe::Quoted;
use log::{info, warn};

use super::conn::Phase;
use super::logins::{Check, Checked};
use super::session::Session;
use super::timer::Timer;
use super::{AUTH_FAILURE_DELAY, Server};
use crate::proto::sasl::Credentials;

impl Server {
    /// Hands a login to the password helpers; the session waits.
    pub(super) fn check_login(
        &mut self,
        slot: usize,
        credentials: Credentials,
    ) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        conn.phase = Phase::Authenticating;
        let user = credentials.user.to_lowercase();
        let key = (slot, conn.generation);
        let pop3 = matches!(conn.session, Session::Pop3(_));
        let stored =
            self.services.directory.password(&user).map(str::to_string);
        let open = pop3.then(|| self.mailbox_to_open(&user));
        self.logins.send(Check {
            key,
            user,
            password: credentials.password,
            stored,
            started: Instant::now(),
            open,
        });
    }

    pub(super) fn finish_logins(&mut self) {
        let checked: Vec<Checked> = self.logins.finished().collect();
        for Checked {
            key: (slot, generation),
            user,
            ok,
            started,
            snapshot,
        } in checked
        {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
            else {
                continue;
            };
            if conn.generation != generation {
                continue;
            }
            if !ok {
                warn!(
                    "conn={} auth failed user={} ip={}",
                    conn.id,
                    Quoted(&user),
                    conn.peer
                );
                self.services.limiter.fail(conn.client, Instant::now());
                let due = started + AUTH_FAILURE_DELAY;
                self.timers
                    .add(due, Timer::LoginFailure, (slot, generation));
                continue;
            }
            info!(
                "conn={} auth ok user={} ip={}",
                conn.id,
                Quoted(&user),
                conn.peer
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
            }
            self.feed(slot, 0);
            self.drive(slot);
        }
    }

    /// Sends a delayed 535 whose time has come; locks out repeat
    /// offenders.
    pub(super) fn answer_failure(
        &mut self,
        (slot, generation): (usize, u64),
        now: Instant,
    ) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        if conn.generation != generation {
            return;
        }
        conn.session.login_failed(&mut conn.wbuf);
        conn.phase = Phase::Open;
        if self.services.limiter.blocked(conn.client, now) {
            warn!(
                "conn={} ip={} locked out: too many authentication failures",
                conn.id, conn.peer
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
