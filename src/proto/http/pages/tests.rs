use super::*;

pub fn site() -> Site {
    Site {
        hostname: "mail.example.test".into(),
        domains: vec!["example.test".into(), "other.test".into()],
        imap: Some(Endpoint {
            port: 993,
            security: Security::Implicit,
        }),
        pop3: Some(Endpoint {
            port: 110,
            security: Security::StartTls,
        }),
        submission: Some(Endpoint {
            port: 587,
            security: Security::StartTls,
        }),
        sts_mode: StsMode::Testing,
        sts_max_age: 604_800,
        challenges: None,
    }
}

#[test]
fn addresses_we_describe() {
    let s = site();
    assert_eq!(
        our_address(&s, "Ann@Example.TEST"),
        Some(("Ann@example.test".into(), "example.test".into()))
    );
    assert_eq!(our_address(&s, "ann@elsewhere.test"), None);
    assert_eq!(our_address(&s, "<x>@example.test"), None);
    assert_eq!(our_address(&s, "@example.test"), None);
    assert_eq!(our_address(&s, "no-at"), None);
}

#[test]
fn autoconfig_lists_each_server() {
    let xml = autoconfig(&site(), "example.test");
    assert!(xml.contains("<incomingServer type=\"imap\">"));
    assert!(
        xml.contains("<port>993</port>\n      <socketType>SSL</socketType>")
    );
    assert!(xml.contains(
        "<port>587</port>\n      <socketType>STARTTLS</socketType>"
    ));
    assert!(xml.contains("<domain>other.test</domain>"));
    assert!(xml.contains("<username>%EMAILADDRESS%</username>"));
}

#[test]
fn autodiscover_reads_and_escapes() {
    let body = b"<Autodiscover><Request><EMailAddress>a&b@example.test</EMailAddress></Request></Autodiscover>";
    let a = autodiscover_address(body).unwrap();
    assert_eq!(a, "a&b@example.test");
    let xml = autodiscover(&site(), &a);
    assert!(xml.contains("<LoginName>a&amp;b@example.test</LoginName>"));
    assert!(!xml.contains("a&b"));
    assert_eq!(autodiscover_address(b"<EMailAddress>unclosed"), None);
}

#[test]
fn profiles_are_stable_per_address() {
    let s = site();
    let one = mobileconfig(&s, "a@example.test", "example.test").unwrap();
    assert_eq!(
        one,
        mobileconfig(&s, "a@example.test", "example.test").unwrap()
    );
    assert_ne!(
        one,
        mobileconfig(&s, "b@example.test", "example.test").unwrap()
    );
    assert!(one.contains("<string>EmailTypeIMAP</string>"));
    let no_submission = Site {
        submission: None,
        ..s
    };
    assert_eq!(
        mobileconfig(&no_submission, "a@example.test", "example.test"),
        None
    );
}

#[test]
fn sts_policy_names_us() {
    assert_eq!(
        sts_policy(&site()),
        "version: STSv1\r\nmode: testing\r\nmx: mail.example.test\r\nmax_age: 604800\r\n"
    );
}
