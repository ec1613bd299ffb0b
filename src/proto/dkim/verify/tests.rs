//! The RFC 8463 Appendix A message (the RFC 6376 example, signed with
//! Ed25519 and with RSA), checked as the SMTP side checks mail.

use super::*;
use crate::proto::dkim::canon::BodyHash;

const SIGNED: &str = r#"DKIM-Signature: v=1; a=ed25519-sha256; c=simple/simple; 
 d=football.example.com; i=@football.example.com; 
 q=dns/txt; s=brisbane; t=1518460054; h=from : to : 
 subject : date : message-id : from : subject : date; 
 bh=4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=; 
 b=9/dsDChY0YMTtD5Eyw3wx7x22BlSJP7M5ECbJ7GWrR45nXlTCGb8l0YB
 o0wBLR++X5LqmsxXaOYLLJe46l10AQ==
DKIM-Signature: v=1; a=rsa-sha256; c=simple/simple; 
 d=football.example.com; i=@football.example.com; 
 q=dns/txt; s=test; t=1527915362; h=from : to : subject : 
 date : message-id : from : subject : date; 
 bh=4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=; 
 b=icKcLSEZYXJ95flvWE8FT6hl5iqd8MC/LEKYH0QjsqYy6MO/4pgVNCZH
 l/RAXAuADxE/40Fg7uTlxwwD1hjN2Ple6J//cJfslBdDOq6zTVbne1dqtl
 NOat7iamJ1AfRqyG+ja7a2AZsrpUuJ7VA6O+0zRYPqpwMEkEFIzI9i/Xk=
From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>

Hi.

We lost the game.  Are you hungry yet?

Joe.
"#;

const ED_KEY: &str =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
const RSA_KEY: &str = "v=DKIM1; g=*; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB";

/// Checks every signature of `msg` with the key `keys` gives its selector.
fn outcomes(msg: &str, keys: &dyn Fn(&str) -> &'static str) -> Vec<Outcome> {
    let (head, body) = msg.split_once("\n\n").unwrap();
    let head = format!("{head}\n");
    let index = fields::Index::new(fields::split(head.as_bytes()));
    index
        .all("dkim-signature")
        .map(|own| {
            let value = std::str::from_utf8(fields::value(own)).unwrap();
            let sig = match parse(value, Kind::Dkim) {
                Ok(s) => s,
                Err(e) => return Outcome::PermError(e),
            };
            let mut bh = BodyHash::new(sig.body_canon, sig.length);
            bh.update(body.as_bytes());
            let key = tags::key(keys(&sig.selector)).unwrap();
            let data = signed_data(&sig, &index, own);
            check(&sig, &key, &bh.finish(), &data)
        })
        .collect()
}

fn key_of(selector: &str) -> &'static str {
    match selector {
        "brisbane" => ED_KEY,
        _ => RSA_KEY,
    }
}

#[test]
fn rfc8463_examples_verify() {
    assert_eq!(outcomes(SIGNED, &key_of), [Outcome::Pass, Outcome::Pass]);
}

#[test]
fn tampering_fails() {
    let body = SIGNED.replace("We lost", "We won");
    assert_eq!(
        outcomes(&body, &key_of),
        [Outcome::Fail("body hash did not verify"); 2]
    );
    let subject = SIGNED.replace("dinner ready", "lunch ready");
    assert_eq!(
        outcomes(&subject, &key_of),
        [Outcome::Fail("signature did not verify"); 2]
    );
    // An added From above the signed one: From is over-signed.
    let added =
        SIGNED.replace("From: Joe", "From: Eve <eve@evil.example>\nFrom: Joe");
    assert_eq!(
        outcomes(&added, &key_of),
        [Outcome::Fail("signature did not verify"); 2]
    );
    // The key of the other algorithm.
    assert_eq!(
        outcomes(SIGNED, &|s| if s == "brisbane" { RSA_KEY } else { ED_KEY }),
        [Outcome::PermError("key type does not match a="); 2]
    );
    // sha1 never passes (RFC 8301).
    let sha1 = SIGNED.replace("a=rsa-sha256", "a=rsa-sha1");
    assert_eq!(
        outcomes(&sha1, &key_of)[1],
        Outcome::Policy("rsa-sha1 is not accepted (RFC 8301)")
    );
}

#[test]
fn b_is_emptied_and_bh_is_not() {
    assert_eq!(
        without_b(b"DKIM-Signature: a=1; bh=xyz; b = ab\n cd ;c=2"),
        b"DKIM-Signature: a=1; bh=xyz; b =;c=2"
    );
    assert_eq!(without_b(b"X: b=1"), b"X: b=");
}

#[test]
fn broken_signatures() {
    let good =
        "v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA; b=AAAA";
    assert!(parse(good, Kind::Dkim).is_ok());
    for (bad, why) in [
        (good.replace("v=1", "v=2"), "v= is not 1"),
        (good.replace("h=from", "h=to"), "From is not signed"),
        (good.replace("a=rsa-sha256", "a=dsa"), "unknown algorithm"),
        (good.replace("; s=s", ""), "a required tag is missing"),
        (format!("{good}; i=x@other.com"), "i= is not in d="),
        (format!("{good}; t=10; x=5"), "x= before t="),
        (format!("{good}; l=-1"), "not a number"),
    ] {
        assert_eq!(parse(&bad, Kind::Dkim), Err(why), "{bad}");
    }
    let sig =
        parse(&format!("{good}; i=u@sub.example.com; x=100"), Kind::Dkim)
            .unwrap();
    assert_eq!(sig.identity_domain.as_deref(), Some("sub.example.com"));
    assert_eq!(
        check_times(&sig, 101),
        Some(Outcome::PermError("signature expired"))
    );
    assert_eq!(check_times(&sig, 99), None);
    let many = format!(
        "v=1; a=rsa-sha256; d=e; s=s; bh=AA==; b=AA==; h=from{}",
        ":x".repeat(200)
    );
    assert_eq!(parse(&many, Kind::Dkim), Err("too many signed fields"));
    assert_eq!(instance(Some("51")), Err("bad instance i="));
    assert_eq!(instance(Some("3")), Ok(3));
}
