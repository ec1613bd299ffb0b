use super::*;

fn forged_bank(policy: Policy) -> Results {
    Results {
        ip: Some("192.0.2.9".parse().unwrap()),
        spf: Some(Spf {
            result: SpfResult::Fail,
            identity: "ceo@bank.example".into(),
            helo: false,
            domain: "bank.example".into(),
        }),
        dkim: Some(vec![]),
        dmarc: Some(Dmarc {
            outcome: evaluate::Outcome::Fail {
                policy,
                asked: policy,
            },
            from: Ok("bank.example".into()),
        }),
        arc: Some(Arc {
            result: "none",
            reason: None,
            sealer: None,
        }),
        iprev: Some(Iprev {
            result: "fail",
            name: None,
        }),
        auth: None,
    }
}

#[test]
fn policies_decide() {
    let mut cfg = Inbound::default();
    let reject = forged_bank(Policy::Reject);
    assert!(
        matches!(reject.decide(&cfg), Disposition::Reject(t) if t.contains("DMARC policy of bank.example"))
    );
    cfg.dmarc_reject = DmarcReject::Junk;
    assert!(matches!(reject.decide(&cfg), Disposition::Junk(_)));
    assert!(matches!(
        forged_bank(Policy::Quarantine).decide(&cfg),
        Disposition::Junk(_)
    ));
    // p=none: SPF's fail decides, by spf_fail.
    let none = forged_bank(Policy::None);
    assert_eq!(none.decide(&cfg), Disposition::Inbox);
    cfg.spf_fail = SpfFail::Junk;
    assert!(matches!(none.decide(&cfg), Disposition::Junk(_)));
    cfg.spf_fail = SpfFail::Reject;
    assert!(
        matches!(none.decide(&cfg), Disposition::Reject(t) if t.contains("SPF fail for bank.example from 192.0.2.9"))
    );
    // A trusted sealer's valid chain lets a failure through.
    let mut listed = forged_bank(Policy::Reject);
    listed.arc = Some(Arc {
        result: "pass",
        reason: None,
        sealer: Some(("lists.example".into(), 1)),
    });
    assert!(matches!(listed.decide(&cfg), Disposition::Junk(_)));
    // A From domain of the stranger's choosing is shown tame.
    let mut odd = forged_bank(Policy::Reject);
    if let Some(d) = odd.dmarc.as_mut() {
        d.from = Ok("b\u{e4}nk.example\r\n250 ok".into());
    }
    cfg.dmarc_reject = DmarcReject::Reject;
    assert!(matches!(odd.decide(&cfg),
        Disposition::Reject(t) if t.contains("policy of b?nk.example??250?ok (p=reject)")));
    cfg.dmarc_reject = DmarcReject::Junk;
    cfg.arc_trusted_sealers = vec!["lists.example".into()];
    assert_eq!(listed.decide(&cfg), Disposition::Inbox);
}

#[test]
fn the_field_says_what_was_done() {
    let mut r = forged_bank(Policy::Reject);
    r.dkim = Some(vec![Dkim {
        outcome: Outcome::PermError("no key"),
        domain: Some("bank.example".into()),
        selector: Some("s1".into()),
        b: Some("abcdefghijkl".into()),
        length: None,
    }]);
    let f = r.field("mx.example.org", &Disposition::Junk("x".into()));
    assert_eq!(
        f,
        "Authentication-Results: mx.example.org;\n\tspf=fail smtp.mailfrom=ceo@bank.example;\n\t\
         dkim=permerror (no key) header.d=bank.example header.s=s1 header.b=abcdefgh;\n\t\
         dmarc=fail (p=reject applied=reject dis=junk) header.from=bank.example;\n\t\
         arc=none;\n\tiprev=fail policy.iprev=192.0.2.9\n"
    );
    let user = Results {
        auth: Some("alice@example.org".into()),
        ..Results::default()
    };
    assert_eq!(
        user.field("mx", &Disposition::Inbox),
        "Authentication-Results: mx;\n\tauth=pass smtp.auth=alice@example.org\n"
    );
    let limited = Results {
        dkim: Some(vec![Dkim {
            outcome: Outcome::Pass,
            domain: Some("d.example".into()),
            selector: None,
            b: None,
            length: Some((120, 4000)),
        }]),
        ..Results::default()
    };
    assert!(
        limited.field("mx", &Disposition::Inbox).contains(
            "dkim=pass (l=120 of 4000 body octets) header.d=d.example"
        )
    );
    let unsigned = Results {
        dkim: Some(vec![]),
        ..Results::default()
    };
    assert!(
        unsigned
            .field("mx", &Disposition::Inbox)
            .contains("dkim=none")
    );
}
