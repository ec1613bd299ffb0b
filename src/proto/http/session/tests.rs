use super::*;

fn session(https: bool, metrics: bool) -> Http {
    Http::new(
        Rc::new(crate::proto::http::pages::tests::site()),
        https,
        metrics,
    )
}

fn status(out: &[u8]) -> u16 {
    std::str::from_utf8(&out[9..12]).unwrap().parse().unwrap()
}

#[test]
fn pages_and_statuses() {
    let mut h = session(false, false);
    let mut out = Vec::new();
    let (n, step) = h.feed(
        b"GET /.well-known/autoconfig/mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.example.test:8080\r\n\r\n",
        &mut out,
    );
    assert_eq!((n > 0, step), (true, HttpStep::Continue));
    assert_eq!(status(&out), 200);
    assert!(
        String::from_utf8_lossy(&out)
            .contains("<emailProvider id=\"example.test\">")
    );
    for (request, want) in [
        (&b"GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n"[..], 404),
        (b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 403),
        (b"DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", 405),
        (b"GET /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: a\r\n\r\n", 405),
        // Over plain HTTP there is no policy.
        (b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.test\r\n\r\n", 404),
        (b"GET /email.mobileconfig?emailaddress=x%40elsewhere.test HTTP/1.1\r\nHost: a\r\n\r\n", 404),
    ] {
        out.clear();
        let (_, step) = h.feed(request, &mut out);
        assert_eq!(step, HttpStep::Continue);
        assert_eq!(status(&out), want, "{}", String::from_utf8_lossy(request));
    }
}

#[test]
fn pipelined_then_metrics_for_the_loop() {
    let mut h = session(true, true);
    let mut out = Vec::new();
    let two = b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.test\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (n, step) = h.feed(two, &mut out);
    assert_eq!(n, two.len());
    assert_eq!(step, HttpStep::Metrics { close: true });
    assert!(String::from_utf8_lossy(&out).ends_with("max_age: 604800\r\n"));
}

#[test]
fn a_bad_request_closes_and_a_partial_one_waits() {
    let mut h = session(false, false);
    let mut out = Vec::new();
    let (n, step) = h.feed(b"GET / HTTP/1.1\r\nHo", &mut out);
    assert_eq!((n, step, h.is_idle()), (0, HttpStep::Continue, false));
    assert!(out.is_empty());
    h.timed_out(&mut out);
    assert_eq!(status(&out), 408);
    out.clear();
    let (_, step) = h.feed(b"GET / HTTP/1.1\r\n\r\n", &mut out);
    assert_eq!(step, HttpStep::Close);
    assert_eq!(status(&out), 400);
    assert!(String::from_utf8_lossy(&out).contains("Connection: close\r\n"));
}

#[test]
fn autodiscover_post() {
    let mut h = session(false, false);
    let mut out = Vec::new();
    let body = "<Autodiscover><Request><EMailAddress>ann@example.test</EMailAddress></Request></Autodiscover>";
    let req = format!(
        "POST /Autodiscover/Autodiscover.xml HTTP/1.1\r\nHost: autodiscover.example.test\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    h.feed(req.as_bytes(), &mut out);
    assert_eq!(status(&out), 200);
    assert!(
        String::from_utf8_lossy(&out)
            .contains("<LoginName>ann@example.test</LoginName>")
    );
}
