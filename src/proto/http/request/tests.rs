use super::*;

fn done(input: &[u8]) -> (Request<'_>, usize) {
    match parse(input) {
        Parsed::Done(r, n) => (r, n),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_get_and_a_post() {
    let input = b"GET /mail/config-v1.1.xml?emailaddress=a%40b.test HTTP/1.1\r\nHost: autoconfig.b.test\r\n\r\nGET";
    let (r, n) = done(input);
    assert_eq!(r.method, b"GET");
    assert_eq!(r.path, b"/mail/config-v1.1.xml");
    assert_eq!(r.host, b"autoconfig.b.test");
    assert!(!r.close);
    assert_eq!(n, input.len() - 3);
    assert_eq!(
        query_value(r.query, "emailaddress").as_deref(),
        Some("a@b.test")
    );
    let post = b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let (r, n) = done(post);
    assert_eq!((r.body, r.close, n), (&b"hello"[..], true, post.len()));
    assert_eq!(parse(&post[..post.len() - 1]), Parsed::Partial);
}

#[test]
fn what_is_refused() {
    let bad = |input: &[u8]| match parse(input) {
        Parsed::Bad(s) => s,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
    };
    assert_eq!(bad(b"GET / HTTP/1.1\r\n\r\n"), 400); // no Host
    assert_eq!(bad(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
    assert_eq!(bad(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
    assert_eq!(bad(b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(bad(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
    assert_eq!(bad(b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"), 400);
    assert_eq!(
        bad(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
        501
    );
    assert_eq!(
        bad(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
        400
    );
    assert_eq!(
        bad(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"),
        400
    );
    assert_eq!(
        bad(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n"),
        413
    );
    let mut many = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..MAX_FIELDS {
        many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(bad(&many), 431);
    let long = [b"GET /".as_slice(), &[b'a'; MAX_TARGET + 40]].concat();
    assert_eq!(bad(&long), 414);
    let huge =
        [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; MAX_HEAD]].concat();
    assert_eq!(bad(&huge), 431);
}

#[test]
fn one_point_zero_closes_and_needs_no_host() {
    let (r, _) = done(b"GET /metrics HTTP/1.0\r\n\r\n");
    assert!(r.close);
    assert_eq!(r.host, b"");
}

#[test]
fn query_values() {
    assert_eq!(query_value(b"a=1&b=x+y%2", "b").as_deref(), Some("x y%2"));
    assert_eq!(query_value(b"a=%ff", "a"), None);
    assert_eq!(query_value(b"a", "a").as_deref(), Some(""));
    assert_eq!(query_value(b"", "a"), None);
}
