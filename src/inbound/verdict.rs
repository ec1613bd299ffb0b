//! The verdict on a message from a stranger, from its results: where
//! it goes (INBOX, Junk, or a 550 at the end of DATA), and the
//! Authentication-Results field that records why. Both come from the
//! same [`Results`], so what the user reads and what the server did
//! cannot disagree. Pure: the loop gathers the results.

use std::net::IpAddr;

use crate::config::inbound::{DmarcReject, Inbound, SpfFail};
use crate::proto::authres::{self, Method};
use crate::proto::dkim::verify::Outcome;
use crate::proto::dmarc::evaluate;
use crate::proto::dmarc::record::Policy;
use crate::proto::spf::check::SpfResult;

/// The SPF result, and the identity it was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spf {
    pub result: SpfResult,
    /// MAIL FROM's address, or HELO's name when MAIL FROM was `<>`.
    pub identity: String,
    pub helo: bool,
    /// The domain checked.
    pub domain: String,
}

/// One DKIM signature's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dkim {
    pub outcome: Outcome,
    pub domain: Option<String>,
    pub selector: Option<String>,
    /// `b=` as written, for `header.b` (its first 8 characters).
    pub b: Option<String>,
    /// `l=`, and the canonical body's whole length: what the signature
    /// leaves unsigned is reported (RFC 6376 §8.2).
    pub length: Option<(u64, u64)>,
}

/// The DMARC result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dmarc {
    pub outcome: evaluate::Outcome,
    /// The From domain, or why there is none.
    pub from: Result<String, &'static str>,
}

/// The ARC chain's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arc {
    /// `none`, `pass`, `fail`, `temperror`.
    pub result: &'static str,
    pub reason: Option<&'static str>,
    /// The newest seal's `d=` and instance, when it passed.
    pub sealer: Option<(String, u32)>,
}

/// The iprev result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iprev {
    /// `pass`, `fail`, `temperror`, `permerror`.
    pub result: &'static str,
    /// The name that matched, or the first one found.
    pub name: Option<String>,
}

/// Everything checked of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Results {
    pub ip: Option<IpAddr>,
    pub spf: Option<Spf>,
    /// Every signature checked; empty when there was none.
    pub dkim: Option<Vec<Dkim>>,
    pub dmarc: Option<Dmarc>,
    pub arc: Option<Arc>,
    pub iprev: Option<Iprev>,
    /// The logged-in user (then nothing else is checked).
    pub auth: Option<String>,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Inbox,
    Junk(String),
    /// `550 5.7.1` with this text.
    Reject(String),
}

impl Disposition {
    /// As logs and the DMARC comment name it.
    pub fn name(&self) -> &'static str {
        match self {
            Disposition::Inbox => "none",
            Disposition::Junk(_) => "junk",
            Disposition::Reject(_) => "reject",
        }
    }
}

impl Results {
    /// True if a trusted sealer vouches for the message (RFC 8617 §7.2).
    fn arc_vouched(&self, cfg: &Inbound) -> Option<&str> {
        let arc = self.arc.as_ref().filter(|a| a.result == "pass")?;
        let (sealer, _) = arc.sealer.as_ref()?;
        cfg.arc_trusted_sealers
            .iter()
            .any(|t| t == sealer)
            .then_some(sealer.as_str())
    }

    /// The verdict under `cfg`.
    pub fn decide(&self, cfg: &Inbound) -> Disposition {
        let vouched = self.arc_vouched(cfg).is_some();
        if let Some(Dmarc {
            outcome: evaluate::Outcome::Fail { policy, .. },
            from: Ok(from),
        }) = &self.dmarc
        {
            match (policy, vouched) {
                (Policy::None, _) | (_, true) => {}
                (Policy::Reject, false)
                    if cfg.dmarc_reject == DmarcReject::Reject =>
                {
                    return Disposition::Reject(format!(
                        "Message rejected: it fails the DMARC policy of {} (p=reject)",
                        shown(from)
                    ));
                }
                (_, false) => {
                    return Disposition::Junk(format!(
                        "DMARC {} for {}",
                        policy.name(),
                        shown(from)
                    ));
                }
            }
        }
        // DMARC decided if it passed, or failed with a policy it applied.
        let dmarc_decided = matches!(
            self.dmarc.as_ref().map(|d| d.outcome),
            Some(
                evaluate::Outcome::Pass
                    | evaluate::Outcome::Fail {
                        policy: Policy::Quarantine | Policy::Reject,
                        ..
                    }
            )
        );
        let spf_failed =
            self.spf.as_ref().filter(|s| s.result == SpfResult::Fail);
        match (spf_failed, dmarc_decided || vouched, cfg.spf_fail) {
            (Some(spf), false, SpfFail::Reject) => {
                Disposition::Reject(format!(
                    "Message rejected: SPF fail for {} from {}",
                    shown(&spf.domain),
                    self.ip.map_or_else(String::new, |i| i.to_string())
                ))
            }
            (Some(spf), false, SpfFail::Junk) => Disposition::Junk(format!(
                "SPF fail for {}",
                shown(&spf.domain)
            )),
            _ => Disposition::Inbox,
        }
    }

    /// The Authentication-Results field for these results.
    pub fn field(
        &self,
        authserv_id: &str,
        disposition: &Disposition,
    ) -> String {
        let mut methods = Vec::new();
        if let Some(user) = &self.auth {
            methods.push(
                Method::new("auth", "pass").with("smtp.auth", user.as_str()),
            );
        }
        if let Some(spf) = &self.spf {
            let property = if spf.helo {
                "smtp.helo"
            } else {
                "smtp.mailfrom"
            };
            methods.push(
                Method::new("spf", spf.result.name())
                    .with(property, spf.identity.as_str()),
            );
        }
        match self.dkim.as_deref() {
            None => {}
            Some([]) => methods.push(Method::new("dkim", "none")),
            Some(sigs) => methods.extend(sigs.iter().map(dkim_method)),
        }
        if let Some(dmarc) = &self.dmarc {
            methods.push(self.dmarc_method(dmarc, disposition));
        }
        if let Some(arc) = &self.arc {
            let mut m = Method::new("arc", arc.result);
            m.reason = match (&arc.sealer, arc.reason) {
                (Some((d, i)), _) => Some(format!("i={i} sealer={d}")),
                (None, r) => r.map(str::to_string),
            };
            methods.push(m);
        }
        if let Some(iprev) = &self.iprev {
            let mut m = Method::new("iprev", iprev.result);
            m.reason = iprev.name.clone();
            if let Some(ip) = self.ip {
                m = m.with("policy.iprev", ip.to_string());
            }
            methods.push(m);
        }
        authres::field(authserv_id, &methods)
    }

    fn dmarc_method(
        &self,
        dmarc: &Dmarc,
        disposition: &Disposition,
    ) -> Method {
        let from = match &dmarc.from {
            Ok(f) => f,
            Err(why) => {
                return Method::new("dmarc", "permerror").because(*why);
            }
        };
        let mut m = Method::new("dmarc", dmarc.outcome.name());
        if let evaluate::Outcome::Fail { asked, policy } = dmarc.outcome {
            let mut why = format!(
                "p={} applied={} dis={}",
                asked.name(),
                policy.name(),
                disposition.name()
            );
            if policy != Policy::None && *disposition == Disposition::Inbox {
                why.push_str(" overridden by a trusted ARC sealer");
            }
            m.reason = Some(why);
        }
        m.with("header.from", from.as_str())
    }
}

/// A stranger's domain as an SMTP reply may show it: letters, digits,
/// dots and hyphens; anything else (8-bit, controls) as `?`.
fn shown(domain: &str) -> String {
    domain
        .chars()
        .take(255)
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
            _ => '?',
        })
        .collect()
}

fn dkim_method(d: &Dkim) -> Method {
    let mut m = Method::new("dkim", d.outcome.name());
    m.reason = d.outcome.reason().map(str::to_string);
    if let Some((signed, whole)) = d.length {
        let l = format!("l={signed} of {whole} body octets");
        m.reason = Some(match m.reason.take() {
            Some(r) => format!("{r}; {l}"),
            None => l,
        });
    }
    if let Some(domain) = &d.domain {
        m = m.with("header.d", domain.as_str());
    }
    if let Some(s) = &d.selector {
        m = m.with("header.s", s.as_str());
    }
    if let Some(b) = &d.b {
        let first: String = b.chars().take(8).collect();
        m = m.with("header.b", first);
    }
    m
}

#[cfg(test)]
mod tests;
