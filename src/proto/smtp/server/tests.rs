//! Session tests against a fake [`Host`]: dialogs in, replies out, and
//! every script replayed in chunks of every size.

use super::*;
use crate::proto::smtp::Host;

struct FakeHost {
    next_id: u32,
}

impl Host for FakeHost {
    fn resolve(&mut self, to: &Path) -> Result<Vec<String>, RcptError> {
        match (to.local(), to.domain()) {
            (_, "") => Ok(vec!["postmaster@local.test".into()]),
            ("alice" | "bob", "local.test") => Ok(vec![to.to_string()]),
            (_, "local.test") => Err(RcptError::UnknownUser),
            _ => Err(RcptError::NotLocal),
        }
    }

    fn may_send_as(&mut self, user: &str, from: &Path) -> bool {
        from.to_string() == user
    }

    fn queue_id(&mut self) -> String {
        self.next_id += 1;
        format!("Q{}", self.next_id)
    }
}

/// What a script produced: the replies, and the messages handed over.
#[derive(Debug, PartialEq)]
struct Run {
    out: String,
    delivered: Vec<(Envelope, Vec<u8>)>,
    closed: bool,
    starttls: usize,
}

/// Feeds `input` in chunks of `size`, answering every delivery with
/// `result`, the way the event loop would.
fn run_with(input: &[u8], size: usize, result: Result<(), Failure>) -> Run {
    run_on(&[input], size, result, false, public_link())
}

fn public_link() -> Link {
    Link {
        peer: "192.0.2.1".parse().unwrap(),
        trusted: false,
        cleartext_auth: false,
        tls: None,
        local_uid: None,
        front_end: false,
    }
}

/// Like `run_with`, on a given kind of listener and connection. Each
/// segment arrives separately (a STARTTLS drops the rest of its own
/// segment, as the loop drops what it read); logins succeed for the
/// password "right".
fn run_on(
    segments: &[&[u8]],
    size: usize,
    result: Result<(), Failure>,
    submission: bool,
    link: Link,
) -> Run {
    let settings = Rc::new(Settings {
        hostname: "mx.local.test".into(),
        max_message_size: 1000,
        max_recipients: 3,
        submission,
        starttls: true,
    });
    let mut session = Server::new(settings, link);
    let mut host = FakeHost { next_id: 0 };
    let mut out = Vec::new();
    let mut sink: Vec<u8> = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut run = Run {
        out: String::new(),
        delivered: vec![],
        closed: false,
        starttls: 0,
    };
    session.greet(&mut out);
    let chunks = segments.iter().flat_map(|seg| {
        let mut parts: Vec<(bool, &[u8])> =
            seg.chunks(size.max(1)).map(|c| (false, c)).collect();
        if let Some(first) = parts.first_mut() {
            first.0 = true;
        }
        parts
    });
    let mut dropping = false;
    for (segment_start, chunk) in chunks {
        if segment_start {
            dropping = false;
        }
        if dropping {
            continue;
        }
        pending.extend_from_slice(chunk);
        loop {
            let mut cx = Cx {
                out: &mut out,
                host: &mut host,
                sink: &mut sink,
            };
            let (used, step) = session.feed(&pending, &mut cx);
            pending.drain(..used);
            match step {
                Step::Continue => break,
                // The loop runs the queue and goes on with the input.
                Step::FlushQueue => continue,
                // The loop writes the figures and goes on.
                Step::Status { .. } => {
                    out.extend_from_slice(b"250 figures\r\n");
                    continue;
                }
                Step::Close => {
                    run.closed = true;
                    break;
                }
                Step::Deliver(env) => {
                    let id = env.id.clone();
                    run.delivered.push((*env, std::mem::take(&mut sink)));
                    session.delivered(&id, result.clone(), &mut out);
                }
                Step::StartTls => {
                    run.starttls += 1;
                    // What the loop does: drop input already read.
                    pending.clear();
                    dropping = true;
                    session.tls_started(TlsInfo {
                        version: "TLSv1.3".into(),
                        cipher: "TLS13_AES_128_GCM_SHA256".into(),
                    });
                    break;
                }
                Step::Authenticate(c) => {
                    let ok = c.password == b"right";
                    session.authenticated(ok.then_some(c.user), &mut out);
                }
            }
        }
        if run.closed {
            break;
        }
    }
    run.out = String::from_utf8_lossy(&out).into_owned();
    run
}

/// Runs the script whole and split at every chunk size; all must agree.
fn run(input: &str) -> Run {
    let whole = run_with(input.as_bytes(), input.len(), Ok(()));
    for size in 1..input.len().min(64) {
        let split = run_with(input.as_bytes(), size, Ok(()));
        assert_eq!(split, whole, "chunk size {size}");
    }
    whole
}

fn codes(run: &Run) -> Vec<&str> {
    run.out
        .lines()
        .filter(|l| l.as_bytes().get(3) == Some(&b' '))
        .map(|l| &l[..3])
        .collect()
}

#[test]
fn whole_pipelined_transaction() {
    let r = run("EHLO c.test\r\nMAIL FROM:<s@x.test>\r\n\
                 RCPT TO:<alice@local.test>\r\nRCPT TO:<bob@local.test>\r\n\
                 DATA\r\nSubject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
    assert_eq!(
        codes(&r),
        ["220", "250", "250", "250", "250", "354", "250", "221"]
    );
    assert!(r.out.contains("250 2.0.0 Ok: queued as Q1\r\n"));
    let (env, body) = &r.delivered[0];
    assert_eq!(body, b"Subject: hi\n\n.dot\n");
    assert_eq!(env.rcpts.len(), 2);
    assert_eq!(env.protocol, "ESMTP");
    assert_eq!(env.size, 21);
    assert!(r.closed);
}

#[test]
fn ehlo_lists_extensions() {
    let r = run("EHLO c\r\n");
    for ext in [
        "PIPELINING",
        "SIZE 1000",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "CHUNKING",
    ] {
        assert!(
            r.out.contains(&format!("250-{ext}\r\n"))
                || r.out.contains(&format!("250 {ext}\r\n")),
            "{ext}"
        );
    }
}

#[test]
fn order_is_enforced() {
    let r = run(
        "MAIL FROM:<a@b.test>\r\nHELO c\r\nRCPT TO:<alice@local.test>\r\n\
                 DATA\r\nMAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\nDATA\r\n",
    );
    assert_eq!(
        codes(&r),
        ["220", "503", "250", "503", "503", "250", "503", "503"]
    );
    assert!(r.delivered.is_empty());
}

#[test]
fn recipient_policy() {
    let r = run("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<nobody@local.test>\r\n\
                 RCPT TO:<x@remote.test>\r\nRCPT TO:<Postmaster>\r\n");
    assert!(r.out.contains("550 5.1.1 <nobody@local.test>"));
    assert!(
        r.out
            .contains("550 5.7.1 <x@remote.test>: Relay access denied")
    );
    assert!(r.out.ends_with("250 2.1.5 Ok\r\n"));
}

#[test]
fn too_many_recipients() {
    let r = run("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@local.test>\r\n\
                 RCPT TO:<alice@local.test>\r\nRCPT TO:<bob@local.test>\r\n\
                 RCPT TO:<bob@local.test>\r\n");
    assert!(r.out.ends_with("452 4.5.3 Too many recipients\r\n"));
}

#[test]
fn size_parameter_and_real_size() {
    let r = run("EHLO c\r\nMAIL FROM:<> SIZE=1001\r\n");
    assert!(
        r.out
            .ends_with("552 5.3.4 Message size exceeds fixed limit\r\n")
    );
    let big = "x".repeat(900);
    let script = format!(
        "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@local.test>\r\n\
                          DATA\r\n{big}\r\n{big}\r\n.\r\nNOOP\r\n"
    );
    let r = run_with(script.as_bytes(), script.len(), Ok(()));
    assert!(r.out.contains("552 5.3.4"));
    assert!(r.out.ends_with("250 2.0.0 Ok\r\n"), "still in step");
    assert!(r.delivered.is_empty());
}

#[test]
fn bare_lf_in_data_is_refused_and_not_smuggled() {
    let r = run(
        "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<bob@local.test>\r\n\
                 DATA\r\nhi\n.\nMAIL FROM:<evil@b.test>\r\n.\r\nNOOP\r\n",
    );
    assert!(r.out.contains("554 5.6.0 Message refused: bare CR or LF"));
    assert!(r.delivered.is_empty());
    assert_eq!(codes(&r).last(), Some(&"250"));
}

#[test]
fn overlong_lines() {
    let long_cmd = format!("NOOP {}\r\nNOOP\r\n", "x".repeat(600));
    let r = run(&long_cmd);
    assert_eq!(codes(&r), ["220", "500", "250"]);
    assert!(r.out.contains("500 5.5.2 Line too long"));
    let long_text = format!(
        "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@local.test>\r\n\
                             DATA\r\n{}\r\n.\r\n",
        "y".repeat(999)
    );
    let settings_big = run_with(long_text.as_bytes(), 7, Ok(()));
    assert!(
        settings_big.out.contains("554 5.6.0")
            || settings_big.out.contains("552")
    );
}

#[test]
fn bdat_chunks() {
    let r = run(
        "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<bob@local.test>\r\n\
                 BDAT 6\r\nA: b\r\nBDAT 0\r\nBDAT 5 LAST\r\n\r\nhi\nQUIT\r\n",
    );
    assert!(r.out.contains("250 2.0.0 6 octets received\r\n"));
    assert_eq!(r.delivered[0].1, b"A: b\n\nhi\n");
    assert!(r.closed);
}

#[test]
fn bdat_without_transaction_stays_in_step() {
    let r = run("EHLO c\r\nBDAT 4 LAST\r\nQUITNOOP\r\n");
    assert_eq!(codes(&r), ["220", "250", "503", "250"]);
}

#[test]
fn data_after_bdat_is_refused() {
    let r = run("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@local.test>\r\n\
                 BDAT 2\r\nabDATA\r\n");
    assert!(r.out.ends_with("503 5.5.1 DATA not allowed after BDAT\r\n"));
}

#[test]
fn mail_loop_is_refused() {
    let hops = "Received: from x\r\n".repeat(51);
    let r = run(&format!(
        "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@local.test>\r\n\
                          DATA\r\n{hops}\r\nbody\r\n.\r\n"
    ));
    assert!(r.out.ends_with("554 5.4.6 Too many hops: mail loop?\r\n"));
}

#[test]
fn storage_failure_is_temporary() {
    let script = "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@local.test>\r\n\
                  DATA\r\nx\r\n.\r\n";
    let r = run_with(
        script.as_bytes(),
        100,
        Err(Failure::Transient("disk full".into())),
    );
    assert!(r.out.ends_with(
        "452 4.3.1 Insufficient system storage, try later (disk full)\r\n"
    ));
}

#[test]
fn too_many_errors_close() {
    let r = run(&"BOGUS\r\n".repeat(12));
    assert!(r.closed);
    assert!(
        r.out
            .ends_with("421 4.7.0 mx.local.test Too many errors\r\n")
    );
    assert_eq!(r.out.matches("500 5.5.1").count(), 10);
}

#[test]
fn helo_means_plain_smtp() {
    let r = run(
        "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@local.test>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert_eq!(r.delivered[0].0.protocol, "SMTP");
    assert!(r.out.contains("250 mx.local.test\r\n"));
}

#[test]
fn utf8_recipient_needs_smtputf8() {
    let r = run("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<jö@local.test>\r\n");
    assert!(
        r.out
            .ends_with("553 5.6.7 Non-ASCII address needs SMTPUTF8\r\n")
    );
}

/// A seeded xorshift stream of random bytes and command fragments: no
/// input may panic the session or make it stop consuming.
#[test]
fn random_input_never_panics() {
    let words: [&[u8]; 10] = [
        b"EHLO x\r\n",
        b"MAIL FROM:<a@b.c>\r\n",
        b"RCPT TO:<bob@local.test>\r\n",
        b"DATA\r\n",
        b"BDAT 3\r\n",
        b"BDAT 2 LAST\r\n",
        b".\r\n",
        b"\r\n",
        b"\n",
        b"\r",
    ];
    let scripts = crate::proto::testing::random_scripts(
        &words,
        0x9E37_79B9_7F4A_7C15,
        300,
        40,
    );
    for (input, size) in scripts {
        let _ = run_with(&input, size, Ok(()));
    }
}

fn tls_link() -> Link {
    Link {
        tls: Some(TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_128_GCM_SHA256".into(),
        }),
        ..public_link()
    }
}

/// Runs segments whole and split at every chunk size; all must agree.
fn run_all(segments: &[&str], submission: bool, link: Link) -> Run {
    let segs: Vec<&[u8]> = segments.iter().map(|s| s.as_bytes()).collect();
    let longest = segs.iter().map(|s| s.len()).max().unwrap_or(1);
    let whole = run_on(&segs, longest, Ok(()), submission, link.clone());
    for size in 1..longest.min(64) {
        let split = run_on(&segs, size, Ok(()), submission, link.clone());
        assert_eq!(split, whole, "chunk size {size}");
    }
    whole
}

#[test]
fn starttls_resets_and_drops_pipelined_commands() {
    let r = run_all(
        &[
            "EHLO c\r\nMAIL FROM:<a@b.test>\r\nSTARTTLS\r\nRCPT TO:<bob@local.test>\r\n",
            "EHLO c\r\nRCPT TO:<bob@local.test>\r\n",
        ],
        false,
        public_link(),
    );
    assert_eq!(r.starttls, 1);
    // Before: STARTTLS offered, no AUTH on a public cleartext link.
    let (before, after) =
        r.out.split_at(r.out.find("220 2.0.0 Ready").unwrap());
    assert!(before.contains("STARTTLS\r\n") && !before.contains("AUTH"));
    // The pipelined RCPT was never run; after TLS the MAIL is forgotten.
    assert!(!after.contains("STARTTLS"));
    assert!(after.contains("AUTH PLAIN LOGIN"));
    assert!(
        after.ends_with("503 5.5.1 Need MAIL command\r\n"),
        "{after}"
    );
}

#[test]
fn auth_needs_tls_on_public_cleartext() {
    let r = run_all(
        &["EHLO c\r\nAUTH PLAIN AGJvYkBsb2NhbC50ZXN0AHJpZ2h0\r\n"],
        false,
        public_link(),
    );
    assert!(r.out.ends_with("538 5.7.11 Encryption required for requested authentication mechanism\r\n"));
    let loopback = Link {
        cleartext_auth: true,
        ..public_link()
    };
    let r = run_all(
        &["EHLO c\r\nAUTH PLAIN AGJvYkBsb2NhbC50ZXN0AHJpZ2h0\r\n"],
        false,
        loopback,
    );
    assert!(r.out.ends_with("235 2.7.0 Authentication successful\r\n"));
}

#[test]
fn auth_mechanisms_and_failures() {
    // PLAIN without and with initial response, LOGIN, a wrong password,
    // a cancelled exchange, bad base64 and AUTH twice.
    let r = run_all(
        &["EHLO c\r\nAUTH PLAIN\r\nAGJvYkBsb2NhbC50ZXN0AHdyb25n\r\n\
           AUTH LOGIN\r\n*\r\nAUTH PLAIN !!!\r\nAUTH LOGIN Ym9iQGxvY2FsLnRlc3Q=\r\n\
           cmlnaHQ=\r\nAUTH PLAIN =\r\n"],
        false,
        tls_link(),
    );
    let replies: Vec<&str> = r
        .out
        .lines()
        .skip_while(|l| !l.starts_with("250 "))
        .skip(1)
        .collect();
    assert_eq!(
        replies,
        [
            "334 ",
            "535 5.7.8 Authentication credentials invalid",
            "334 VXNlcm5hbWU6",
            "501 5.7.0 Authentication cancelled",
            "501 5.5.2 Cannot decode response",
            "334 UGFzc3dvcmQ6",
            "235 2.7.0 Authentication successful",
            "503 5.5.1 Already authenticated",
        ]
    );
}

#[test]
fn submission_requires_auth_and_owned_sender() {
    let r = run_all(
        &["EHLO c\r\nMAIL FROM:<bob@local.test>\r\n"],
        true,
        tls_link(),
    );
    assert!(r.out.ends_with("530 5.7.0 Authentication required\r\n"));
    let r = run_all(
        &["EHLO c\r\nAUTH PLAIN AGJvYkBsb2NhbC50ZXN0AHJpZ2h0\r\n\
           MAIL FROM:<alice@local.test>\r\nMAIL FROM:<bob@local.test>\r\n\
           RCPT TO:<friend@remote.test>\r\nDATA\r\nhi\r\n.\r\n"],
        true,
        tls_link(),
    );
    assert!(r.out.contains("553 5.7.1 <alice@local.test>: Sender address not owned by bob@local.test"));
    let env = &r.delivered[0].0;
    assert_eq!(env.rcpts[0].route, Route::Relay);
    assert_eq!(env.protocol, "ESMTPSA");
    assert_eq!(env.user.as_deref(), Some("bob@local.test"));
}

#[test]
fn relay_only_for_users_and_trusted_networks() {
    let script =
        "EHLO c\r\nMAIL FROM:<x@y.test>\r\nRCPT TO:<friend@remote.test>\r\n";
    let r = run_all(&[script], false, public_link());
    assert!(
        r.out.ends_with(
            "550 5.7.1 <friend@remote.test>: Relay access denied\r\n"
        )
    );
    let trusted = Link {
        trusted: true,
        ..public_link()
    };
    let r = run_all(&[script], false, trusted);
    assert!(r.out.ends_with("250 2.1.5 Ok\r\n"));
}

#[test]
fn long_auth_lines_are_allowed_long_commands_are_not() {
    let b64 = "A".repeat(1000);
    let r = run_all(
        &[&format!("EHLO c\r\nAUTH PLAIN {b64}\r\n")],
        false,
        tls_link(),
    );
    // Decoded (so the line was taken whole), but not PLAIN's form.
    assert!(
        r.out.ends_with("501 5.5.4 Malformed response\r\n"),
        "{}",
        r.out
    );
    let r =
        run_all(&[&format!("EHLO c\r\nNOOP {b64}\r\n")], false, tls_link());
    assert!(r.out.ends_with("500 5.5.2 Line too long\r\n"), "{}", r.out);
}

/// Blocklists: RCPT waits, unread, until the loop says what the lists
/// said; then a listing refuses every RCPT, and a clean verdict lets it
/// through. A trusted client is never held.
#[test]
fn rcpt_waits_for_the_blocklists() {
    let settings = port25();
    let feed = |session: &mut Server, input: &[u8], out: &mut Vec<u8>| {
        feed_once(session, input, out).0
    };
    let script: &[u8] =
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<bob@local.test>\r\n";
    let rcpt_at = script.len() - b"RCPT TO:<bob@local.test>\r\n".len();
    for listed in [false, true] {
        let mut session = Server::new(Rc::clone(&settings), public_link());
        session.expect_listings(true, true);
        let mut out = Vec::new();
        assert_eq!(feed(&mut session, script, &mut out), rcpt_at);
        assert!(session.awaits_listings());
        // Fed again before the answers: still unread.
        assert_eq!(feed(&mut session, &script[rcpt_at..], &mut out), 0);
        session.client_listed(None);
        assert!(session.awaits_listings(), "the sender's list is still out");
        let refusal =
            listed.then(|| "Sender address [a@x.test] listed".into());
        session.sender_listed("Q9", None); // an earlier transaction's
        assert!(session.awaits_listings());
        session.sender_listed("Q1", refusal);
        out.clear();
        let rest = &script[rcpt_at..];
        assert_eq!(feed(&mut session, rest, &mut out), rest.len());
        let reply = String::from_utf8(out).unwrap();
        match listed {
            true => assert_eq!(
                reply,
                "554 5.7.1 Sender address [a@x.test] listed\r\n"
            ),
            false => assert_eq!(reply, "250 2.1.5 Ok\r\n"),
        }
    }
    let mut trusted_link = public_link();
    trusted_link.trusted = true;
    let mut session = Server::new(Rc::clone(&settings), trusted_link);
    session.expect_listings(true, true);
    let mut out = Vec::new();
    assert_eq!(feed(&mut session, script, &mut out), script.len());
    assert!(
        String::from_utf8(out)
            .unwrap()
            .ends_with("250 2.1.5 Ok\r\n")
    );
}

/// The checks before content: talking before the greeting ends, or
/// sending a command before the reply to HELO/EHLO, closes the session
/// with 554 5.5.1; MAIL within the rules passes.
#[test]
fn screening_before_content() {
    let settings = port25();
    let feed = feed_once;
    let greeted = || {
        let mut session = Server::new(Rc::clone(&settings), public_link());
        let mut out = Vec::new();
        session.begin_greeting(&mut out);
        assert_eq!(out, b"220-mx.local.test ESMTP postling\r\n");
        (session, out)
    };
    let (mut early, mut out) = greeted();
    let (_, step) = feed(&mut early, b"EHLO bot\r\n", &mut out);
    assert!(matches!(step, Step::Close));
    assert_eq!(
        early.screen_failed(),
        Some("talked before the greeting ended")
    );
    for script in [
        &b"EHLO bot\r\nMAIL FROM:<a@x.test>\r\n"[..],
        b"HELO bot\r\n",
    ] {
        let (mut session, mut out) = greeted();
        session.end_greeting(&mut out);
        let (_, step) = feed(&mut session, script, &mut out);
        if script.starts_with(b"HELO") {
            // HELO offers no PIPELINING: MAIL and RCPT at once break it.
            let rest = b"MAIL FROM:<a@x.test>\r\nRCPT TO:<bob@local.test>\r\n";
            let (_, step) = feed(&mut session, rest, &mut out);
            assert!(matches!(step, Step::Close));
        } else {
            assert!(matches!(step, Step::Close));
        }
        assert!(session.screen_failed().is_some());
        assert!(String::from_utf8(out).unwrap().contains("554 5.5.1"));
    }
    let (mut polite, mut out) = greeted();
    polite.end_greeting(&mut out);
    feed(&mut polite, b"EHLO client\r\n", &mut out);
    assert!(!polite.screen_passed());
    let (_, step) = feed(
        &mut polite,
        b"MAIL FROM:<a@x.test>\r\nRCPT TO:<bob@local.test>\r\n",
        &mut out,
    );
    assert!(matches!(step, Step::Continue));
    assert!(polite.screen_passed());
}

/// Settings of a port 25 listener without TLS.
fn port25() -> Rc<Settings> {
    Rc::new(Settings {
        hostname: "mx.local.test".into(),
        max_message_size: 1000,
        max_recipients: 3,
        submission: false,
        starttls: false,
    })
}

/// One feed, as the loop makes it, with no delivery in between.
fn feed_once(
    session: &mut Server,
    input: &[u8],
    out: &mut Vec<u8>,
) -> (usize, Step) {
    let mut host = FakeHost { next_id: 0 };
    let mut sink: Vec<u8> = Vec::new();
    let mut cx = Cx {
        out,
        host: &mut host,
        sink: &mut sink,
    };
    session.feed(input, &mut cx)
}
