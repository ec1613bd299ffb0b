//! POP3 session tests: scripts in, replies out, every script replayed
//! split at every chunk size.

use super::*;
use crate::proto::smtp::TlsInfo;
use std::sync::Arc;

fn link(tls: bool, cleartext: bool) -> Link {
    Link {
        peer: "192.0.2.1".parse().unwrap(),
        trusted: false,
        cleartext_auth: cleartext,
        tls: tls.then(|| TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "X".into(),
        }),
        local_uid: None,
        front_end: false,
    }
}

fn drop_of(n: usize) -> Arc<dyn Listings> {
    let list: Vec<Listing> = (1..=n)
        .map(|i| Listing {
            uid: format!("u{i}"),
            size: 100 * i as u64,
        })
        .collect();
    Arc::new(list)
}

#[derive(Debug, PartialEq)]
struct Run {
    out: String,
    sends: Vec<(usize, Option<usize>)>,
    update: Option<(Vec<usize>, Vec<usize>)>,
    closed: bool,
}

/// Feeds `input` in chunks of `size`; password "pw" is right; the
/// maildrop has three messages; a Send writes "<body>".
fn run_with(input: &[u8], size: usize, link: Link) -> Run {
    let mut s = Pop3::new("mx.test".into(), true, link);
    let mut out = Vec::new();
    s.greet(&mut out);
    let mut pending = Vec::new();
    let mut run = Run {
        out: String::new(),
        sends: vec![],
        update: None,
        closed: false,
    };
    'outer: for chunk in input.chunks(size.max(1)) {
        pending.extend_from_slice(chunk);
        loop {
            let (used, step) = s.feed(&pending, &mut out);
            pending.drain(..used);
            match step {
                Pop3Step::Continue => break,
                Pop3Step::Close => {
                    run.closed = true;
                    break 'outer;
                }
                Pop3Step::StartTls => {
                    pending.clear();
                    s.tls_started(TlsInfo {
                        version: "TLSv1.3".into(),
                        cipher: "X".into(),
                    });
                    break;
                }
                Pop3Step::Authenticate(c) => {
                    let r = if c.password == b"pw" {
                        Ok(drop_of(3))
                    } else {
                        Err(LoginError::Credentials)
                    };
                    s.logged_in(r, &mut out);
                }
                Pop3Step::Send { index, top } => {
                    run.sends.push((index, top));
                    out.extend_from_slice(b"<body>\r\n.\r\n");
                    s.sent();
                }
                Pop3Step::Update { deleted, seen } => {
                    run.update = Some((deleted, seen));
                    s.updated(Ok(()), &mut out);
                    run.closed = true;
                    break 'outer;
                }
            }
        }
    }
    run.out = String::from_utf8_lossy(&out).into_owned();
    run
}

fn run(input: &str, link: Link) -> Run {
    let whole = run_with(input.as_bytes(), input.len(), link.clone());
    for size in 1..input.len().min(48) {
        assert_eq!(
            run_with(input.as_bytes(), size, link.clone()),
            whole,
            "chunk {size}"
        );
    }
    whole
}

#[test]
fn full_session() {
    let r = run(
        "CAPA\r\nUSER bob@x.test\r\nPASS pw\r\nSTAT\r\nLIST\r\nUIDL 2\r\nRETR 1\r\n\
         TOP 2 5\r\nDELE 3\r\nLIST 3\r\nSTAT\r\nQUIT\r\n",
        link(true, false),
    );
    let expected = "+OK mx.test POP3 postling ready\r\n\
        +OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
        PIPELINING\r\nEXPIRE NEVER\r\nIMPLEMENTATION postling\r\nUSER\r\nSASL PLAIN\r\n.\r\n\
        +OK\r\n+OK 3 messages (600 octets)\r\n+OK 3 600\r\n\
        +OK\r\n1 100\r\n2 200\r\n3 300\r\n.\r\n+OK 2 u2\r\n\
        +OK 100 octets\r\n<body>\r\n.\r\n+OK 200 octets\r\n<body>\r\n.\r\n\
        +OK message 3 deleted\r\n-ERR message is deleted\r\n+OK 2 300\r\n\
        +OK mx.test POP3 server signing off\r\n";
    assert_eq!(r.out, expected);
    assert_eq!(r.sends, [(0, None), (1, Some(5))]);
    assert_eq!(r.update, Some((vec![2], vec![0])));
}

#[test]
fn stls_and_cleartext_policy() {
    let r = run("CAPA\r\nUSER a\r\nSTLS\r\n", link(false, false));
    assert!(r.out.contains("STLS\r\n.\r\n") && !r.out.contains("USER\r\n"));
    assert!(
        r.out
            .contains("-ERR [AUTH] Plaintext authentication disallowed")
    );
    assert!(
        r.out.ends_with("+OK Begin TLS negotiation\r\n"),
        "{}",
        r.out
    );
}

#[test]
fn auth_plain_forms_and_failures() {
    let r = run(
        "AUTH\r\nAUTH PLAIN\r\nAGJvYkB4LnRlc3QAd3Jvbmc=\r\nAUTH PLAIN *bad*\r\n\
         AUTH PLAIN AGJvYkB4LnRlc3QAcHc=\r\nUSER x\r\n",
        link(true, false),
    );
    assert_eq!(
        r.out,
        "+OK mx.test POP3 postling ready\r\n+OK\r\nPLAIN\r\n.\r\n+ \r\n\
         -ERR [AUTH] Authentication failed\r\n-ERR cannot decode response\r\n\
         +OK 3 messages (600 octets)\r\n-ERR not allowed after login\r\n"
    );
}

#[test]
fn wrong_state_and_bad_numbers() {
    let r = run(
        "STAT\r\nPASS pw\r\nUSER b\r\nPASS pw\r\nRETR 0\r\nRETR 4\r\nTOP 1\r\nUSER c\r\nRSET\r\nNOOP\r\nQUIT\r\n",
        link(true, false),
    );
    let errs = r.out.matches("-ERR").count();
    assert_eq!(errs, 6, "{}", r.out);
    assert_eq!(r.update, Some((vec![], vec![])));
}

#[test]
fn quit_before_login_deletes_nothing() {
    let r = run("USER b\r\nPASS pw\r\nDELE 1\r\n", link(true, false));
    assert!(!r.closed && r.update.is_none());
    let r = run("QUIT\r\n", link(true, false));
    assert!(r.closed && r.update.is_none());
}

#[test]
fn long_lines_and_error_limit() {
    let long = format!("NOOP {}\r\nNOOP\r\n", "x".repeat(5000));
    let r = run(&long, link(true, false));
    assert!(
        r.out.ends_with("-ERR line too long\r\n+OK\r\n"),
        "{}",
        r.out
    );
    let r = run(&"BOGUS\r\n".repeat(22), link(true, false));
    assert!(r.closed && r.out.ends_with("-ERR too many errors, closing\r\n"));
    assert_eq!(r.out.matches("-ERR").count(), 21);
}

/// A logged-in client that makes mistakes (a mail client probing
/// commands, a user typing) keeps its session up to Dovecot's 20.
#[test]
fn logged_in_sessions_survive_nineteen_mistakes() {
    let script =
        format!("USER b\r\nPASS pw\r\n{}STAT\r\n", "XTND\r\n".repeat(19));
    let r = run(&script, link(true, false));
    assert!(!r.closed, "{}", r.out);
    assert!(r.out.ends_with("+OK 3 600\r\n"), "{}", r.out);
    let script =
        format!("USER b\r\nPASS pw\r\n{}STAT\r\n", "XTND\r\n".repeat(20));
    assert!(run(&script, link(true, false)).closed);
}

#[test]
fn random_input_never_panics() {
    let words: [&[u8]; 8] = [
        b"USER a\r\n",
        b"PASS pw\r\n",
        b"RETR 1\r\n",
        b"DELE 2\r\n",
        b"TOP 1 1\r\n",
        b"AUTH PLAIN\r\n",
        b"\r\n",
        b"LIST\r\n",
    ];
    let scripts = crate::proto::testing::random_scripts(
        &words,
        0x1234_5678_9ABC_DEF1,
        300,
        30,
    );
    for (input, size) in scripts {
        let _ = run_with(&input, size, link(true, false));
    }
}

#[test]
fn autologout_and_shutdown_delete_nothing() {
    let mut s = Pop3::new("mx.test".into(), false, link(true, false));
    let mut out = Vec::new();
    let (_, step) = s.feed(b"USER b\r\nPASS pw\r\n", &mut out);
    let Pop3Step::Authenticate(_) = step else {
        panic!("{step:?}")
    };
    s.logged_in(Ok(drop_of(1)), &mut out);
    let (_, step) = s.feed(b"DELE 1\r\n", &mut out);
    assert!(matches!(step, Pop3Step::Continue));
    assert!(matches!(s.timed_out(&mut out), Pop3Step::Close));
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.ends_with("-ERR [SYS/TEMP] Autologout; idle for too long\r\n")
    );
}

/// A client pipelining listings of a big maildrop and never reading:
/// the session's output stays under the cap (plus one line), and what
/// the client gets once it reads is every listing, whole and in order.
#[test]
fn pipelined_listings_are_bounded_and_complete() {
    let mut s = Pop3::new("mx.test".into(), false, link(true, false));
    let mut out = Vec::new();
    let (_, step) = s.feed(b"USER b\r\nPASS pw\r\n", &mut out);
    assert!(matches!(step, Pop3Step::Authenticate(_)));
    s.logged_in(Ok(drop_of(5000)), &mut out);
    out.clear();
    let script = b"UIDL\r\n".repeat(40);
    let mut pending: &[u8] = &script;
    let mut received = Vec::new();
    for _ in 0..100_000 {
        let (used, step) = s.feed(pending, &mut out);
        assert!(matches!(step, Pop3Step::Continue));
        assert!(out.len() < OUTPUT_CAP + 100, "{}", out.len());
        pending = &pending[used..];
        // The client reads everything written so far.
        received.append(&mut out);
        if pending.is_empty() && !s.has_more_output() {
            break;
        }
    }
    let text = String::from_utf8(received).unwrap();
    assert_eq!(text.matches("+OK\r\n").count(), 40);
    assert_eq!(text.matches("\r\n.\r\n").count(), 40);
    assert_eq!(text.matches("\r\n5000 u5000\r\n").count(), 40);
    assert_eq!(text.lines().count(), 40 * 5002);
}
