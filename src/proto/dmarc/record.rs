//! Reading a DMARC record (RFC 7489 §6.3, §6.4): the tags a receiver
//! acts on. Unknown tags are ignored; a record without `v=DMARC1` first
//! or without a valid `p=` is not a policy (§6.6.3).

/// What a domain asks be done with mail that fails DMARC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    fn parse(v: &str) -> Option<Policy> {
        match v.to_ascii_lowercase().as_str() {
            "none" => Some(Policy::None),
            "quarantine" => Some(Policy::Quarantine),
            "reject" => Some(Policy::Reject),
            _ => None,
        }
    }

    /// As Authentication-Results names it (`policy.applied`... and the
    /// `p=` value).
    pub fn name(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }
}

/// How closely an identifier's domain must match the From domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alignment {
    /// The same organizational domain.
    Relaxed,
    /// The same domain.
    Strict,
}

/// A DMARC record, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `p=`: for the domain itself.
    pub policy: Policy,
    /// `sp=`: for its subdomains (`p=` if absent).
    pub subdomain_policy: Policy,
    /// `pct=`: the share of failing mail the policy applies to (0–100).
    pub pct: u8,
    /// `adkim=`.
    pub dkim: Alignment,
    /// `aspf=`.
    pub spf: Alignment,
}

/// Why a TXT string is not a usable DMARC record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDmarc(pub &'static str);

/// True if a TXT string is meant as a DMARC record (`v=DMARC1` first),
/// whether or not the rest reads.
pub fn is_dmarc(txt: &str) -> bool {
    txt.split(';').next().is_some_and(|first| {
        first
            .split_once('=')
            .is_some_and(|(k, v)| k.trim() == "v" && v.trim() == "DMARC1")
    })
}

/// Reads a record.
pub fn parse(txt: &str) -> Result<Record, NotDmarc> {
    if !is_dmarc(txt) {
        return Err(NotDmarc("not a DMARC record"));
    }
    let mut policy = None;
    let mut subdomain = None;
    let mut pct = 100;
    let mut dkim = Alignment::Relaxed;
    let mut spf = Alignment::Relaxed;
    let mut rua = false;
    for tag in txt.split(';').skip(1) {
        let Some((name, value)) = tag.split_once('=') else {
            if tag.trim().is_empty() {
                continue;
            }
            return Err(NotDmarc("a tag without a value"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "p" => policy = Policy::parse(value),
            "rua" => rua = !value.is_empty(),
            // An unknown sp= is as if absent.
            "sp" => subdomain = Policy::parse(value),
            // pct= out of range or not a number: the default (§6.3).
            "pct" => {
                pct = value
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= 100)
                    .unwrap_or(100)
            }
            "adkim" => dkim = alignment(value).unwrap_or(Alignment::Relaxed),
            "aspf" => spf = alignment(value).unwrap_or(Alignment::Relaxed),
            _ => {}
        }
    }
    // §6.6.3: no usable p= is no policy, unless reports are asked
    // for: then it is as if p=none.
    let policy = match (policy, rua) {
        (Some(p), _) => p,
        (None, true) => Policy::None,
        (None, false) => return Err(NotDmarc("no valid p=")),
    };
    Ok(Record {
        policy,
        subdomain_policy: subdomain.unwrap_or(policy),
        pct,
        dkim,
        spf,
    })
}

fn alignment(v: &str) -> Option<Alignment> {
    match v {
        "r" | "R" => Some(Alignment::Relaxed),
        "s" | "S" => Some(Alignment::Strict),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tags_a_receiver_acts_on() {
        let r = parse("v=DMARC1; p=reject; sp=quarantine; pct=25; adkim=s; aspf=r; rua=mailto:d@example.com").unwrap();
        assert_eq!(
            r,
            Record {
                policy: Policy::Reject,
                subdomain_policy: Policy::Quarantine,
                pct: 25,
                dkim: Alignment::Strict,
                spf: Alignment::Relaxed,
            }
        );
        let plain = parse("v=DMARC1;p=none").unwrap();
        assert_eq!(plain.subdomain_policy, Policy::None);
        assert_eq!(
            (plain.pct, plain.dkim, plain.spf),
            (100, Alignment::Relaxed, Alignment::Relaxed)
        );
        assert_eq!(
            parse("v=DMARC1; p=Quarantine; pct=150; sp=bogus;")
                .unwrap()
                .pct,
            100
        );
        assert_eq!(parse("v=DMARC1; p=reject; pct=0").unwrap().pct, 0);
    }

    #[test]
    fn what_is_not_a_policy() {
        for bad in [
            "v=DMARC2; p=reject",
            "p=reject; v=DMARC1",
            "v=DMARC1",
            "v=DMARC1; p=bogus",
            "v=spf1 -all",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(is_dmarc("v=DMARC1; p=bogus") && !is_dmarc("v=spf1"));
        // A bad or missing p= with reports asked for is p=none.
        for lax in [
            "v=DMARC1; p=bogus; rua=mailto:r@x",
            "v=DMARC1; rua=mailto:r@x",
        ] {
            assert_eq!(
                parse(lax).map(|r| r.policy),
                Ok(Policy::None),
                "{lax}"
            );
        }
    }
}
