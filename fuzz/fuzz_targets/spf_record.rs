//! SPF records and macro expansion: reading never panics; every
//! domain-spec a record accepts expands (for IPv4 and IPv6 clients)
//! without error, within bounded size, and fits a query once trimmed;
//! a record reads the same with its spaces doubled; and a check whose
//! every TXT lookup finds this record (includes and redirects of itself
//! included) ends within the limits, whatever the other lookups say.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::spf::check::{Answer, Check, Qtype, Step};
use postling::proto::spf::macros::{self, Context, Use};
use postling::proto::spf::record::{Mechanism, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for (i, ip) in ["192.0.2.3", "2001:db8::cb01"].iter().enumerate() {
        let mut check = Check::new(ip.parse().unwrap(), "a@example.com", "helo.example", "mx.example", 0);
        let mut steps = 0;
        while let Step::Lookup(q) = check.step() {
            steps += 1;
            // 10 terms, 10 names each, and the explanation: far below this.
            assert!(steps < 400, "the check did not end");
            check.answer(match q.qtype {
                Qtype::Txt => Answer::Texts(vec![text.to_string()]),
                Qtype::Mx | Qtype::Ptr if i == 0 => Answer::Names(vec!["mx.example.com".into()]),
                Qtype::A | Qtype::Aaaa if i == 0 => Answer::Addrs(vec!["192.0.2.9".parse().unwrap()]),
                _ if steps % 3 == 0 => Answer::TempFail,
                _ => Answer::Void,
            });
        }
    }
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
