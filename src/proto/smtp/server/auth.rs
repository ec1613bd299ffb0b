//! STARTTLS (RFC 3207) and AUTH (RFC 4954) for the SMTP session.
//!
//! Passwords are never checked here: a complete response leaves as
//! [`Step::Authenticate`], and the loop reports back through
//! [`Server::authenticated`].

use memchr::memchr;

use super::{Cx, Server, State, Step, TlsInfo, Txn};
use crate::proto::sasl::{self, Credentials, SaslError};
use crate::proto::smtp::Reply;
use crate::proto::smtp::command::{MAX_AUTH_LINE, Mechanism};

/// Where a SASL exchange is.
#[derive(Debug)]
pub(super) enum Sasl {
    /// `334 ` sent for PLAIN; the response carries everything.
    Plain,
    /// `334 VXNlcm5hbWU6` (Username:) sent.
    LoginUser,
    /// `334 UGFzc3dvcmQ6` (Password:) sent for this user.
    LoginPassword(String),
}

/// The base64 prompts of the LOGIN mechanism.
const USERNAME: &str = "VXNlcm5hbWU6";
const PASSWORD: &str = "UGFzc3dvcmQ6";

impl Server {
    /// STARTTLS can be offered: configured, and not in TLS already.
    pub(super) fn may_starttls(&self) -> bool {
        self.settings.starttls && self.link.tls.is_none()
    }

    /// A password may be sent: over TLS, or where cleartext is allowed.
    pub(super) fn may_auth(&self) -> bool {
        self.link.tls.is_some() || self.link.cleartext_auth
    }

    pub(super) fn starttls(&mut self, txn: Txn, cx: &mut Cx<'_>) -> Step {
        if self.link.tls.is_some() {
            let reply = Reply::new(503, "5.5.1", "TLS already active");
            return self.keep(txn, reply, cx);
        }
        if !self.settings.starttls {
            let reply = Reply::new(454, "4.7.0", "TLS not available");
            return self.keep(txn, reply, cx);
        }
        Reply::new(220, "2.0.0", "Ready to start TLS").write(cx.out);
        // RFC 3207 4.2: forget everything learned before TLS.
        self.hello = None;
        self.user = None;
        self.state = State::Command(Txn::Idle);
        Step::StartTls
    }

    /// The handshake completed: the connection is now encrypted.
    pub fn tls_started(&mut self, info: TlsInfo) {
        self.link.tls = Some(info);
    }

    pub(super) fn auth(
        &mut self,
        txn: Txn,
        mechanism: Mechanism,
        initial: Option<&[u8]>,
        cx: &mut Cx<'_>,
    ) -> Step {
        if let Err(reply) = self.check_auth(&txn) {
            return self.keep(txn, reply, cx);
        }
        self.state = State::Command(Txn::Idle);
        match (mechanism, initial) {
            (Mechanism::Plain, None) => self.challenge(Sasl::Plain, "", cx),
            (Mechanism::Login, None) => {
                self.challenge(Sasl::LoginUser, USERNAME, cx)
            }
            (_, Some(response)) => {
                let sasl = match mechanism {
                    Mechanism::Plain => Sasl::Plain,
                    Mechanism::Login => Sasl::LoginUser,
                };
                self.respond(sasl, response, cx)
            }
        }
    }

    fn check_auth(&self, txn: &Txn) -> Result<(), Reply> {
        if self.hello.is_none() {
            return Err(Reply::new(503, "5.5.1", "Send EHLO first"));
        }
        if self.user.is_some() {
            return Err(Reply::new(503, "5.5.1", "Already authenticated"));
        }
        if !matches!(txn, Txn::Idle) {
            return Err(Reply::new(
                503,
                "5.5.1",
                "AUTH not allowed in a mail transaction",
            ));
        }
        if !self.may_auth() {
            return Err(Reply::new(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            ));
        }
        Ok(())
    }

    fn challenge(
        &mut self,
        sasl: Sasl,
        prompt: &str,
        cx: &mut Cx<'_>,
    ) -> Step {
        cx.out
            .extend_from_slice(format!("334 {prompt}\r\n").as_bytes());
        self.state = State::Sasl(sasl);
        Step::Continue
    }

    /// A response line in the middle of an exchange.
    pub(super) fn sasl_input(
        &mut self,
        sasl: Sasl,
        input: &[u8],
        cx: &mut Cx<'_>,
    ) -> (usize, Step) {
        let Some(lf) = memchr(b'\n', input) else {
            if input.len() >= MAX_AUTH_LINE {
                self.state = State::LongLine(Txn::Idle);
                return (input.len(), Step::Continue);
            }
            self.state = State::Sasl(sasl);
            return (0, Step::Continue);
        };
        self.state = State::Command(Txn::Idle);
        let line = input[..lf].strip_suffix(b"\r").unwrap_or(&input[..lf]);
        if line == b"*" {
            let reply = Reply::new(501, "5.7.0", "Authentication cancelled");
            return (lf + 1, self.error(reply, cx));
        }
        (lf + 1, self.respond(sasl, line, cx))
    }

    fn respond(&mut self, sasl: Sasl, b64: &[u8], cx: &mut Cx<'_>) -> Step {
        // RFC 4954 4: a lone `=` is an empty initial response.
        let decoded = if b64 == b"=" {
            Ok(Vec::new())
        } else {
            sasl::decode(b64)
        };
        let step = decoded.and_then(|d| match sasl {
            Sasl::Plain => sasl::plain(&d).map(Some),
            Sasl::LoginUser => {
                let user = sasl::login_user(&d)?;
                Ok(self.then_password(user, cx))
            }
            Sasl::LoginPassword(user) => {
                Ok(Some(Credentials { user, password: d }))
            }
        });
        match step {
            Ok(Some(credentials)) => {
                self.state = State::Authenticating;
                Step::Authenticate(credentials)
            }
            Ok(None) => Step::Continue,
            Err(SaslError::Base64 | SaslError::TooLong) => {
                let reply = Reply::new(501, "5.5.2", "Cannot decode response");
                self.error(reply, cx)
            }
            Err(SaslError::Malformed) => {
                let reply = Reply::new(501, "5.5.4", "Malformed response");
                self.error(reply, cx)
            }
        }
    }

    fn then_password(
        &mut self,
        user: String,
        cx: &mut Cx<'_>,
    ) -> Option<Credentials> {
        self.challenge(Sasl::LoginPassword(user), PASSWORD, cx);
        None
    }

    /// The loop checked the credentials of the last
    /// [`Step::Authenticate`]: `Some(user)` on success.
    pub fn authenticated(&mut self, user: Option<String>, out: &mut Vec<u8>) {
        self.state = State::Command(Txn::Idle);
        match user {
            Some(user) => {
                Reply::new(235, "2.7.0", "Authentication successful")
                    .write(out);
                self.user = Some(user);
            }
            None => {
                Reply::new(535, "5.7.8", "Authentication credentials invalid")
                    .write(out);
                self.errors += 1;
            }
        }
    }

    /// Too many failed logins from this address: say so and close.
    pub fn locked_out(&mut self, out: &mut Vec<u8>) -> Step {
        self.close(
            out,
            Reply::new(421, "4.7.0", "Too many authentication failures"),
        )
    }

    /// The client guessed at addresses too often (SRS): 421, close.
    pub fn too_many_failures(&mut self, out: &mut Vec<u8>) -> Step {
        self.close(out, Reply::new(421, "4.7.0", "Too many failures"))
    }
}
