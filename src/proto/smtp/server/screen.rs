//! Checks before content, as Postfix's postscreen makes them: cheap, and
//! they stop most bots before they cost anything.
//!
//! - A client not seen before gets the first line of a multi-line
//!   greeting at once and the last one only after `greet_delay`: a
//!   client that talks before the greeting ends (a bot that does not
//!   wait, RFC 5321 §3.1) is refused.
//! - A client that sends its next command before our reply to HELO or
//!   EHLO (pipelining before it was offered, RFC 2920 §3.1), or any
//!   command after HELO before the reply to the one before (HELO offers
//!   no PIPELINING), is refused.
//!
//! A client that reaches MAIL with neither has passed (the loop remembers
//! it for a day, and greets it at once).

use super::{Reply, Server, Step};

/// Where a screened client stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Screen {
    /// Not screened: trusted, seen before, or the checks are off.
    #[default]
    Off,
    /// The greeting's last line is not sent yet.
    Greeting,
    /// Greeted: watching for commands sent before our reply, until MAIL.
    Watching,
    /// MAIL came, and nothing before it broke the rules.
    Passed,
    /// Refused, for this.
    Failed(&'static str),
}

impl Server {
    /// Greets a client not seen before: the first line now, the last by
    /// [`Server::end_greeting`] when the delay is over.
    pub fn begin_greeting(&mut self, out: &mut Vec<u8>) {
        let text = format!("{} ESMTP postling", self.settings.hostname);
        out.extend_from_slice(format!("220-{text}\r\n").as_bytes());
        self.screen = Screen::Greeting;
    }

    /// The delay is over: the greeting's last line.
    pub fn end_greeting(&mut self, out: &mut Vec<u8>) {
        if self.screen == Screen::Greeting {
            self.greet(out);
            self.screen = Screen::Watching;
        }
    }

    /// True once a screened client has reached MAIL within the rules.
    pub fn screen_passed(&self) -> bool {
        self.screen == Screen::Passed
    }

    /// Why a screened client was refused, if it was.
    pub fn screen_failed(&self) -> Option<&'static str> {
        match self.screen {
            Screen::Failed(why) => Some(why),
            _ => None,
        }
    }

    /// Input while the greeting is not over: refused.
    pub(super) fn talked_early(&mut self, out: &mut Vec<u8>) -> Option<Step> {
        (self.screen == Screen::Greeting).then(|| {
            self.screen_refuse("talked before the greeting ended", out)
        })
    }

    /// After a command line: `more` octets followed it in what came, and
    /// pipelining was `offered` before this command.
    pub(super) fn check_pipelining(
        &mut self,
        more: bool,
        offered: bool,
        out: &mut Vec<u8>,
    ) -> Option<Step> {
        if self.screen != Screen::Watching || !more || offered {
            return None;
        }
        Some(self.screen_refuse(
            "sent commands before our reply (pipelining not offered)",
            out,
        ))
    }

    /// MAIL was accepted: a watched client has passed.
    pub(super) fn screen_mail(&mut self) {
        if self.screen == Screen::Watching {
            self.screen = Screen::Passed;
        }
    }

    fn screen_refuse(&mut self, why: &'static str, out: &mut Vec<u8>) -> Step {
        self.screen = Screen::Failed(why);
        let text = format!("Protocol error: {why}");
        self.close(out, Reply::new(554, "5.5.1", text))
    }
}
