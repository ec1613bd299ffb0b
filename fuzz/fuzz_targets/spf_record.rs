//! SPF records and macro expansion: reading never panics; every
//! domain-spec a record accepts expands (for IPv4 and IPv6 clients)
//! without error, within bounded size, and fits a query once trimmed;
//! a record reads the same with its spaces doubled.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::spf::macros::{self, Context, Use};
use postling::proto::spf::record::{Mechanism, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(record) = parse(text) else { return };
    let doubled = text.replace(' ', "  ");
    assert_eq!(parse(&doubled).as_ref().ok(), Some(&record));
    let mut specs: Vec<&str> = record.redirect.into_iter().collect();
    for d in &record.directives {
        match &d.mechanism {
            Mechanism::Include(s) | Mechanism::Exists(s) => specs.push(s),
            Mechanism::A(Some(s), ..) | Mechanism::Mx(Some(s), ..) | Mechanism::Ptr(Some(s)) => {
                specs.push(s)
            }
            _ => {}
        }
    }
    for ip in ["192.0.2.3", "2001:db8::cb01"] {
        let cx = Context {
            local: "strong-bad",
            sender_domain: "email.example.com",
            domain: "email.example.com",
            ip: ip.parse().unwrap(),
            helo: "mx.example.org",
            validated: None,
            receiver: "mx.example.net",
            now: 0,
        };
        for spec in &specs {
            let expanded = macros::expand(spec, Use::Domain, &cx).expect("accepted, so it expands");
            // Each macro adds at most the longest value (an IPv6 `i`, 63 octets, or
            // an escaped sender), three times over when escaped.
            assert!(expanded.len() <= spec.len() * 3 * 64 + 64);
            assert!(macros::fit_domain(&expanded).len() <= 253);
        }
        if let Some(exp) = record.exp {
            macros::expand(exp, Use::Domain, &cx).expect("exp is a domain-spec");
        }
    }
});
