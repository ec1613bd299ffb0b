//! The ManageSieve session (RFC 5804): the capability greeting,
//! STARTTLS, AUTHENTICATE PLAIN, then the script commands, each handed
//! to the loop as a [`ScriptOp`] to run on a helper (they touch the
//! disk), its answer written when it comes back.

use super::reader::{Arg, Read, Reader};
use crate::proto::sasl::{self, Credentials};
use crate::proto::smtp::{Link, TlsInfo};

/// The SIEVE capability: every extension a script may require.
pub fn extensions() -> String {
    crate::proto::sieve::script::EXTENSIONS.join(" ")
}

/// Work on a user's scripts, done off the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptOp {
    HaveSpace { name: String, size: u64 },
    Put { name: String, text: Vec<u8> },
    Check { text: Vec<u8> },
    List,
    SetActive { name: String },
    Get { name: String },
    Delete { name: String },
    Rename { from: String, to: String },
}

/// What the session asks of the loop.
#[derive(Debug)]
pub enum SieveStep {
    Continue,
    Close,
    StartTls,
    Authenticate(Credentials),
    /// Script work for the logged-in user; its answer goes to
    /// [`ManageSieve::done`].
    Io(ScriptOp),
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Not logged in.
    Open,
    /// AUTHENTICATE PLAIN sent `""`; waiting for the response.
    Challenged,
    /// A password is being checked, or script work done.
    Waiting,
    /// Logged in.
    User,
    Closed,
}

pub struct ManageSieve {
    state: State,
    reader: Reader,
    link: Link,
    /// STARTTLS is possible (a certificate is configured).
    starttls: bool,
    user: Option<String>,
}

/// Writes a quoted string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if !c.is_control() {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// An `OK`, `NO` or `BYE` line with its optional code.
pub fn reply(out: &mut Vec<u8>, kind: &str, code: Option<&str>, text: &str) {
    let code = code.map(|c| format!(" ({c})")).unwrap_or_default();
    out.extend_from_slice(
        format!("{kind}{code} {}\r\n", quote(text)).as_bytes(),
    );
}

impl ManageSieve {
    pub fn new(link: Link, starttls: bool) -> ManageSieve {
        ManageSieve {
            state: State::Open,
            reader: Reader::default(),
            link,
            starttls,
            user: None,
        }
    }

    pub fn greet(&mut self, out: &mut Vec<u8>) {
        self.capabilities(out);
        reply(out, "OK", None, "postling ManageSieve ready");
    }

    fn capabilities(&self, out: &mut Vec<u8>) {
        let mut c = String::new();
        c.push_str("\"IMPLEMENTATION\" \"postling\"\r\n");
        let sasl = if self.may_login() { "PLAIN" } else { "" };
        c.push_str(&format!("\"SASL\" \"{sasl}\"\r\n"));
        c.push_str(&format!("\"SIEVE\" \"{}\"\r\n", extensions()));
        if self.starttls && self.link.tls.is_none() {
            c.push_str("\"STARTTLS\"\r\n");
        }
        c.push_str(&format!(
            "\"MAXREDIRECTS\" \"{}\"\r\n",
            crate::proto::sieve::run::MAX_REDIRECTS
        ));
        c.push_str("\"VERSION\" \"1.0\"\r\n");
        out.extend_from_slice(c.as_bytes());
    }

    fn may_login(&self) -> bool {
        self.link.tls.is_some() || self.link.cleartext_auth
    }

    /// The user, once logged in.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    pub fn is_idle(&self) -> bool {
        self.state != State::Waiting
    }

    pub fn forwarded(&self) -> Option<std::net::IpAddr> {
        None
    }

    /// Reads and answers what it can of `input`: one command at a time
    /// (the next waits while work is out).
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> (usize, SieveStep) {
        let mut used = 0;
        while matches!(
            self.state,
            State::Open | State::User | State::Challenged
        ) {
            let (n, read) = self.reader.feed(&input[used..]);
            used += n;
            let step = match read {
                Read::More => return (used, SieveStep::Continue),
                Read::Bad(why) => {
                    reply(out, "NO", None, why);
                    SieveStep::Continue
                }
                Read::Command(args) if self.state == State::Challenged => {
                    self.sasl_response(args, out)
                }
                Read::Command(args) => self.command(args, out),
            };
            if !matches!(step, SieveStep::Continue) {
                return (used, step);
            }
        }
        (used, SieveStep::Continue)
    }

    fn command(&mut self, args: Vec<Arg>, out: &mut Vec<u8>) -> SieveStep {
        let mut it = args.into_iter();
        let Some(Arg::Atom(verb)) = it.next() else {
            reply(out, "NO", None, "expected a command");
            return SieveStep::Continue;
        };
        let rest: Vec<Arg> = it.collect();
        let logged_in = self.state == State::User;
        let text = |a: &Arg| match a {
            Arg::Str(s) => String::from_utf8(s.clone()).ok(),
            _ => None,
        };
        let op = match (verb.as_str(), rest.as_slice(), logged_in) {
            ("CAPABILITY", [], _) => {
                self.capabilities(out);
                reply(out, "OK", None, "Capability completed");
                return SieveStep::Continue;
            }
            ("NOOP", [], _) => {
                reply(out, "OK", None, "NOOP completed");
                return SieveStep::Continue;
            }
            ("NOOP", [tag], _) => {
                let tag = text(tag).unwrap_or_default();
                reply(
                    out,
                    "OK",
                    Some(&format!("TAG {}", quote(&tag))),
                    "Done",
                );
                return SieveStep::Continue;
            }
            ("LOGOUT", [], _) => {
                reply(out, "OK", None, "Logout completed");
                self.state = State::Closed;
                return SieveStep::Close;
            }
            ("STARTTLS", [], false)
                if self.starttls && self.link.tls.is_none() =>
            {
                // The loop drops what was pipelined behind it and
                // speaks TLS from the next octet.
                reply(out, "OK", None, "Begin TLS negotiation");
                return SieveStep::StartTls;
            }
            ("AUTHENTICATE", [mech, initial @ ..], false)
                if initial.len() <= 1 =>
            {
                return self.authenticate(mech, initial.first(), out);
            }
            ("UNAUTHENTICATE", [], true) => {
                self.user = None;
                self.state = State::Open;
                reply(out, "OK", None, "Unauthenticate completed");
                return SieveStep::Continue;
            }
            (_, _, false) if is_script_command(&verb) => {
                reply(out, "NO", None, "Log in first");
                return SieveStep::Continue;
            }
            ("LISTSCRIPTS", [], true) => Some(ScriptOp::List),
            ("HAVESPACE", [name, Arg::Number(size)], true) => text(name)
                .map(|name| ScriptOp::HaveSpace { name, size: *size }),
            ("PUTSCRIPT", [name, Arg::Str(body)], true) => {
                text(name).map(|name| ScriptOp::Put {
                    name,
                    text: body.clone(),
                })
            }
            ("CHECKSCRIPT", [Arg::Str(body)], true) => {
                Some(ScriptOp::Check { text: body.clone() })
            }
            ("SETACTIVE", [name], true) => {
                text(name).map(|name| ScriptOp::SetActive { name })
            }
            ("GETSCRIPT", [name], true) => {
                text(name).map(|name| ScriptOp::Get { name })
            }
            ("DELETESCRIPT", [name], true) => {
                text(name).map(|name| ScriptOp::Delete { name })
            }
            ("RENAMESCRIPT", [from, to], true) => text(from)
                .zip(text(to))
                .map(|(from, to)| ScriptOp::Rename { from, to }),
            _ => None,
        };
        match op {
            Some(op) => {
                self.state = State::Waiting;
                SieveStep::Io(op)
            }
            None => {
                reply(out, "NO", None, "Unknown command or bad arguments");
                SieveStep::Continue
            }
        }
    }

    fn authenticate(
        &mut self,
        mech: &Arg,
        initial: Option<&Arg>,
        out: &mut Vec<u8>,
    ) -> SieveStep {
        let plain =
            matches!(mech, Arg::Str(m) if m.eq_ignore_ascii_case(b"PLAIN"));
        if !plain {
            reply(out, "NO", None, "Unsupported mechanism");
            return SieveStep::Continue;
        }
        if !self.may_login() {
            reply(
                out,
                "NO",
                Some("ENCRYPT-NEEDED"),
                "Plaintext authentication needs TLS",
            );
            return SieveStep::Continue;
        }
        match initial {
            Some(Arg::Str(b64)) => self.credentials(b64, out),
            Some(_) => {
                reply(out, "NO", None, "Bad initial response");
                SieveStep::Continue
            }
            None => {
                out.extend_from_slice(b"\"\"\r\n");
                self.state = State::Challenged;
                SieveStep::Continue
            }
        }
    }

    fn sasl_response(
        &mut self,
        args: Vec<Arg>,
        out: &mut Vec<u8>,
    ) -> SieveStep {
        self.state = State::Open;
        match args.as_slice() {
            [Arg::Str(b64)] => self.credentials(b64, out),
            _ => {
                reply(out, "NO", None, "Authentication cancelled");
                SieveStep::Continue
            }
        }
    }

    fn credentials(&mut self, b64: &[u8], out: &mut Vec<u8>) -> SieveStep {
        match sasl::decode(b64).and_then(|d| sasl::plain(&d)) {
            Ok(c) => {
                self.state = State::Waiting;
                SieveStep::Authenticate(c)
            }
            Err(_) => {
                reply(out, "NO", None, "Malformed PLAIN response");
                SieveStep::Continue
            }
        }
    }

    /// The password check's outcome.
    pub fn logged_in(&mut self, user: Option<String>, out: &mut Vec<u8>) {
        match user {
            Some(u) => {
                self.user = Some(u);
                self.state = State::User;
                reply(out, "OK", None, "Logged in");
            }
            None => {
                self.state = State::Open;
                reply(out, "NO", None, "Authentication failed");
            }
        }
    }

    /// Script work's answer, written as the helper made it.
    pub fn done(&mut self, answer: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(answer);
        if self.state == State::Waiting {
            self.state = State::User;
        }
    }

    pub fn tls_started(&mut self, info: TlsInfo, out: &mut Vec<u8>) {
        self.link.tls = Some(info);
        self.state = State::Open;
        // RFC 5804 §2.2: the capabilities again, now over TLS.
        self.capabilities(out);
        reply(out, "OK", None, "TLS negotiation successful");
    }

    pub fn locked_out(&mut self, out: &mut Vec<u8>) {
        reply(out, "BYE", None, "Too many authentication failures");
        self.state = State::Closed;
    }

    pub fn timed_out(&mut self, out: &mut Vec<u8>) {
        reply(out, "BYE", None, "Idle for too long");
        self.state = State::Closed;
    }

    pub fn shutdown(&mut self, out: &mut Vec<u8>) {
        reply(out, "BYE", Some("TRYLATER"), "Server shutting down");
        self.state = State::Closed;
    }
}

fn is_script_command(verb: &str) -> bool {
    matches!(
        verb,
        "LISTSCRIPTS"
            | "HAVESPACE"
            | "PUTSCRIPT"
            | "CHECKSCRIPT"
            | "SETACTIVE"
            | "GETSCRIPT"
            | "DELETESCRIPT"
            | "RENAMESCRIPT"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Link {
        Link {
            peer: "127.0.0.1".parse().unwrap(),
            trusted: false,
            cleartext_auth: true,
            tls: None,
            local_uid: None,
            front_end: false,
        }
    }

    #[test]
    fn dialog_steps() {
        let mut s = ManageSieve::new(link(), true);
        let mut out = Vec::new();
        s.greet(&mut out);
        let token = "AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZSBwdw==";
        let auth = format!("AUTHENTICATE \"PLAIN\" \"{token}\"\r\n");
        let (n, step) = s.feed(auth.as_bytes(), &mut out);
        assert!(
            matches!(step, SieveStep::Authenticate(ref c) if c.user == "alice@example.test"),
            "{step:?}"
        );
        assert_eq!(n, auth.len());
        s.logged_in(Some("alice@example.test".into()), &mut out);
        let (_, step) = s.feed(b"HAVESPACE \"a\" 1000\r\n", &mut out);
        assert!(
            matches!(step, SieveStep::Io(ScriptOp::HaveSpace { .. })),
            "{step:?}"
        );
        assert!(!s.is_idle());
        s.done(b"OK\r\n", &mut out);
        let (_, step) = s.feed(b"PUTSCRIPT \"x\" {5+}\r\nkeep;\r\n", &mut out);
        assert!(
            matches!(step, SieveStep::Io(ScriptOp::Put { ref text, .. }) if text == b"keep;"),
            "{step:?}"
        );
    }
}
