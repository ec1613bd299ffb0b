//! The DMARC decision (RFC 7489 §3.1, §6.6): is an SPF or DKIM pass
//! aligned with the From domain, and if none is, what the domain's
//! policy asks, after `sp=` and `pct=`.

use super::psl::List;
use super::record::{Alignment, Policy, Record};

/// What a receiver found of a message's authentication.
#[derive(Debug, Clone)]
pub struct Evidence<'a> {
    /// The RFC 5322 From domain, lower case.
    pub from: &'a str,
    /// The domain SPF passed for (MAIL FROM's, or HELO's when it was
    /// `<>`), if SPF passed.
    pub spf_pass: Option<&'a str>,
    /// The `d=` of each DKIM signature that passed.
    pub dkim_pass: &'a [String],
}

/// The DMARC result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No record: nothing to apply.
    None,
    Pass,
    /// Not aligned: `policy` is what the domain asks done now (after
    /// `sp=` and `pct=`), `asked` what its record says.
    Fail {
        policy: Policy,
        asked: Policy,
    },
    /// The record could not be looked up: try later.
    TempError,
}

impl Outcome {
    /// As Authentication-Results names it.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::None => "none",
            Outcome::Pass => "pass",
            Outcome::Fail { .. } => "fail",
            Outcome::TempError => "temperror",
        }
    }
}

/// True if `a` and `b` align: the same domain (strict) or the same
/// organizational domain (relaxed).
pub fn aligned(list: &List, how: Alignment, a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('.'), b.trim_end_matches('.'));
    match how {
        Alignment::Strict => a.eq_ignore_ascii_case(b),
        Alignment::Relaxed => list.organizational(a) == list.organizational(b),
    }
}

/// Decides for `evidence` under `record`, found at `record_domain` (the
/// From domain itself, or its organizational domain). `roll` is a
/// number from 0 to 99 drawn for this message, for `pct=`.
pub fn evaluate(
    list: &List,
    record: &Record,
    record_domain: &str,
    evidence: &Evidence<'_>,
    roll: u8,
) -> Outcome {
    let spf = evidence
        .spf_pass
        .is_some_and(|d| aligned(list, record.spf, d, evidence.from));
    let dkim = evidence
        .dkim_pass
        .iter()
        .any(|d| aligned(list, record.dkim, d, evidence.from));
    if spf || dkim {
        return Outcome::Pass;
    }
    // §6.6.3: a record found at the organizational domain for a
    // subdomain speaks through sp=.
    let asked = match record_domain.eq_ignore_ascii_case(evidence.from) {
        true => record.policy,
        false => record.subdomain_policy,
    };
    // §6.6.4: outside the sample, the next policy down.
    let policy = match roll < record.pct {
        true => asked,
        false => match asked {
            Policy::Reject => Policy::Quarantine,
            _ => Policy::None,
        },
    };
    Outcome::Fail { policy, asked }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::dmarc::record::parse;

    #[test]
    fn alignment_and_policies() {
        let list = List::parse("com\nuk\nco.uk\n");
        let reject = parse("v=DMARC1; p=reject; sp=quarantine").unwrap();
        let from = "bank.co.uk";
        let ev = |spf, dkim: &'static [String]| Evidence {
            from,
            spf_pass: spf,
            dkim_pass: dkim,
        };
        let none: &[String] = &[];
        // Relaxed: a subdomain's SPF pass aligns.
        assert_eq!(
            evaluate(
                &list,
                &reject,
                from,
                &ev(Some("mail.bank.co.uk"), none),
                0
            ),
            Outcome::Pass
        );
        // Another organization does not, nor does the public suffix.
        let fail = Outcome::Fail {
            policy: Policy::Reject,
            asked: Policy::Reject,
        };
        assert_eq!(
            evaluate(&list, &reject, from, &ev(Some("evil.co.uk"), none), 0),
            fail
        );
        assert_eq!(
            evaluate(&list, &reject, from, &ev(Some("co.uk"), none), 0),
            fail
        );
        // Strict DKIM needs the very domain.
        let strict = parse("v=DMARC1; p=reject; adkim=s").unwrap();
        let signed = Box::leak(Box::new(vec!["mail.bank.co.uk".to_string()]));
        assert_eq!(evaluate(&list, &strict, from, &ev(None, signed), 0), fail);
        assert_eq!(
            evaluate(&list, &reject, from, &ev(None, signed), 0),
            Outcome::Pass
        );
        // A subdomain's mail under the organization's record: sp=.
        let sub = Evidence {
            from: "news.bank.co.uk",
            spf_pass: None,
            dkim_pass: none,
        };
        assert_eq!(
            evaluate(&list, &reject, "bank.co.uk", &sub, 0),
            Outcome::Fail {
                policy: Policy::Quarantine,
                asked: Policy::Quarantine
            }
        );
        // pct=0: reject becomes quarantine, quarantine none.
        let sample = parse("v=DMARC1; p=reject; pct=0").unwrap();
        assert_eq!(
            evaluate(&list, &sample, from, &ev(None, none), 0),
            Outcome::Fail {
                policy: Policy::Quarantine,
                asked: Policy::Reject
            }
        );
        let q = parse("v=DMARC1; p=quarantine; pct=50").unwrap();
        assert_eq!(
            evaluate(&list, &q, from, &ev(None, none), 50),
            Outcome::Fail {
                policy: Policy::None,
                asked: Policy::Quarantine
            }
        );
        assert_eq!(
            evaluate(&list, &q, from, &ev(None, none), 49),
            Outcome::Fail {
                policy: Policy::Quarantine,
                asked: Policy::Quarantine
            }
        );
    }
}
