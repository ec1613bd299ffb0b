//! SMTP edge cases over a real socket.

use std::io::Write;
use std::time::Duration;

use crate::util::{TestServer, strip_trace};

#[test]
fn whole_transaction_in_one_packet() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send(
        b"EHLO c.test\r\nMAIL FROM:<s@remote.test>\r\n\
          RCPT TO:<bob@example.test>\r\nDATA\r\nSubject: one\r\n\r\n\
          body\r\n.\r\nQUIT\r\n",
    );
    let mut all = String::new();
    loop {
        let r = c.reply();
        if r.is_empty() {
            break;
        }
        all.push_str(&r);
    }
    assert!(all.starts_with("220 mx.example.test ESMTP"), "{all}");
    assert!(all.contains("354 "), "{all}");
    assert!(all.contains("250 2.0.0 Ok: queued as "), "{all}");
    assert!(all.ends_with("221 2.0.0 mx.example.test Bye\r\n"), "{all}");
    let msgs = server.maildir("bob", "example.test");
    assert_eq!(msgs.len(), 1);
    assert_eq!(strip_trace(&msgs[0]).1, b"Subject: one\n\nbody\n");
}

#[test]
fn dot_stuffing_round_trips_byte_for_byte() {
    let server = TestServer::start();
    let mut c = server.connect();
    let body = b"Subject: dots\r\n\r\n..leading dot\r\n...\r\n. \r\nend.\r\n";
    let r = c.send_mail("s@remote.test", &["bob@example.test"], body);
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let (head, stored) =
        strip_trace(&server.maildir("bob", "example.test")[0]);
    assert_eq!(stored, b"Subject: dots\n\n.leading dot\n..\n \nend.\n");
    // A stranger's message: Authentication-Results before Received
    // (this server's resolver is unreachable: temperror, fast).
    assert!(
        head.starts_with(
            "Return-Path: <s@remote.test>\n\
             Delivered-To: bob@example.test\n\
             Authentication-Results: mx.example.test;\n\
             \tspf=temperror smtp.mailfrom=s@remote.test;\n\
             \tdkim=none;\n\
             \tdmarc=permerror (not exactly one From field);\n\
             \tarc=none;\n\
             \tiprev=temperror policy.iprev=127.0.0.1\n\
             Received: from client.test ([127.0.0.1])\n\
             \tby mx.example.test (postling) with ESMTP id "
        ),
        "{head}"
    );
    assert!(head.contains("\n\tfor <bob@example.test>;\n\t"));
}

#[test]
fn bdat_chunks_are_assembled() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.reply();
    c.cmd("EHLO c.test");
    c.cmd("MAIL FROM:<s@remote.test> BODY=8BITMIME");
    c.cmd("RCPT TO:<bob@example.test>");
    c.send(b"BDAT 13\r\nSubject: b\r\n\r");
    assert_eq!(c.reply(), "250 2.0.0 13 octets received\r\n");
    c.send(b"BDAT 10 LAST\r\n\nh\xc3\xa9.\r\n.\r\n");
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued as"));
    let (_, stored) = strip_trace(&server.maildir("bob", "example.test")[0]);
    assert_eq!(stored, "Subject: b\n\nhé.\n.\n".as_bytes());
}

#[test]
fn bare_lf_smuggling_is_refused() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.reply();
    c.cmd("EHLO c.test");
    c.cmd("MAIL FROM:<s@remote.test>");
    c.cmd("RCPT TO:<bob@example.test>");
    c.cmd("DATA");
    c.send(
        b"Subject: x\r\n\r\nhi\n.\nMAIL FROM:<evil@remote.test>\r\n\
             RCPT TO:<alice@example.test>\r\nDATA\r\nsmuggled\r\n.\r\n",
    );
    let r = c.reply();
    assert!(r.starts_with("554 5.6.0"), "{r}");
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    assert!(server.maildir("bob", "example.test").is_empty());
    assert!(server.maildir("alice", "example.test").is_empty());
}

#[test]
fn oversize_message_gets_552_and_session_goes_on() {
    let server = TestServer::with_config("max_message_size = 10K\n");
    let mut c = server.connect();
    c.reply();
    assert!(c.cmd("EHLO c").contains("250-SIZE 10240\r\n"));
    assert!(c.cmd("MAIL FROM:<> SIZE=20000").starts_with("552 5.3.4"));
    c.cmd("MAIL FROM:<>");
    c.cmd("RCPT TO:<bob@example.test>");
    c.cmd("DATA");
    let line = format!("{}\r\n", "z".repeat(70));
    for _ in 0..200 {
        c.send(line.as_bytes());
    }
    c.send(b".\r\n");
    assert!(c.reply().starts_with("552 5.3.4"));
    assert_eq!(c.cmd("RSET"), "250 2.0.0 Ok\r\n");
    assert!(server.maildir("bob", "example.test").is_empty());
}

#[test]
fn overlong_lines() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.reply();
    let r = c.cmd(&format!("EHLO {}", "a".repeat(600)));
    assert!(r.starts_with("500 5.5.2 Line too long"), "{r}");
    // A huge line with no end at all is consumed, not buffered.
    c.send(&vec![b'x'; 200_000]);
    c.send(b"\r\n");
    assert!(c.reply().starts_with("500 5.5.2"));
    c.cmd("EHLO c");
    c.cmd("MAIL FROM:<>");
    c.cmd("RCPT TO:<bob@example.test>");
    c.cmd("DATA");
    c.send(format!("{}\r\n.\r\n", "y".repeat(1200)).as_bytes());
    let r = c.reply();
    assert!(
        r.starts_with("554 5.6.0 Message refused: line over 1000"),
        "{r}"
    );
}

#[test]
fn slow_client_byte_at_a_time() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.stream.set_nodelay(true).unwrap();
    c.reply();
    let script = b"EHLO slow.test\r\nMAIL FROM:<s@remote.test>\r\n\
                   RCPT TO:<team@example.test>\r\nDATA\r\n";
    for b in script {
        c.stream.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    for _ in 0..4 {
        c.reply();
    }
    for b in b"Subject: slow\r\n\r\nx\r\n.\r\n" {
        c.stream.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    assert!(c.reply().starts_with("250 2.0.0 Ok"));
    // team@ is alice and bob: the same file hard-linked into both.
    assert_eq!(server.maildir("alice", "example.test").len(), 1);
    assert_eq!(
        server.maildir("alice", "example.test"),
        server.maildir("bob", "example.test")
    );
}

#[test]
fn recipient_policy_and_aliases() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.reply();
    c.cmd("EHLO c");
    c.cmd("MAIL FROM:<s@remote.test>");
    for (rcpt, want) in [
        ("nobody@example.test", "550 5.1.1"),
        ("x@remote.test", "550 5.7.1"),
        ("bob@remote.test", "550 5.7.1"),
        ("bob%remote.test@example.test", "550 5.1.1"),
        ("Bob+Lists@EXAMPLE.test", "250 2.1.5"),
        ("anything@other.test", "250 2.1.5"),
        ("Postmaster", "250 2.1.5"),
    ] {
        let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert!(r.starts_with(want), "{rcpt}: {r}");
    }
    c.cmd("DATA");
    c.send(b"Subject: p\r\n\r\n.\r\n");
    assert!(c.reply().starts_with("250"));
    assert_eq!(server.maildir("bob", "example.test").len(), 1);
    assert_eq!(server.maildir("carol", "other.test").len(), 1);
    assert_eq!(server.maildir("alice", "example.test").len(), 1);
    // Several mailboxes share one file: no recipient is named in it.
    let (head, _) = strip_trace(&server.maildir("bob", "example.test")[0]);
    assert!(!head.contains("Delivered-To") && !head.contains("for <"));
}

#[test]
fn too_many_recipients() {
    let server = TestServer::with_config("max_recipients = 2\n");
    let mut c = server.connect();
    c.reply();
    c.cmd("EHLO c");
    c.cmd("MAIL FROM:<>");
    c.cmd("RCPT TO:<bob@example.test>");
    c.cmd("RCPT TO:<alice@example.test>");
    assert!(c.cmd("RCPT TO:<carol@other.test>").starts_with("452 4.5.3"));
}

#[test]
fn idle_timeout_says_421() {
    let server = TestServer::with_config("smtp_timeout = 1\n");
    let mut c = server.connect();
    c.reply();
    let r = c.reply();
    assert!(r.starts_with("421 4.4.2"), "{r}");
    assert!(c.closed());
}

#[test]
fn connection_limits_421_at_greeting() {
    let server = TestServer::with_config("max_connections_per_ip = 2\n");
    let mut a = server.connect();
    let mut b = server.connect();
    assert!(a.reply().starts_with("220"));
    assert!(b.reply().starts_with("220"));
    let mut c = server.connect();
    assert!(c.reply().starts_with("421 4.7.0"));
    assert!(c.closed());
    a.cmd("QUIT");
    assert!(a.closed());
    assert!(server.wait_log("conn=1 disconnect"));
    let mut d = server.connect();
    assert!(d.reply().starts_with("220"));
}

#[test]
fn many_errors_end_the_session() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.reply();
    for _ in 0..9 {
        assert!(c.cmd("FOO").starts_with("500 5.5.1"));
    }
    assert!(c.cmd("FOO").starts_with("500 5.5.1"));
    let r = c.reply();
    assert_eq!(r, "421 4.7.0 mx.example.test Too many errors\r\n");
    assert!(c.closed());
}

#[test]
fn concurrent_sessions() {
    let server = TestServer::with_config(
        "max_connections = 300\nmax_connections_per_ip = 300\n",
    );
    let addr = server.addr;
    let threads: Vec<_> = (0..200)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = crate::util::Client::connect(addr);
                let body = format!("Subject: n{i}\r\n\r\nmessage {i}\r\n");
                let r = c.send_mail(
                    "s@remote.test",
                    &["bob@example.test"],
                    body.as_bytes(),
                );
                assert!(r.starts_with("250 2.0.0"), "{r}");
                c.cmd("QUIT");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let msgs = server.maildir("bob", "example.test");
    assert_eq!(msgs.len(), 200);
    let mut seen: Vec<String> = msgs
        .iter()
        .map(|m| String::from_utf8_lossy(&strip_trace(m).1).into_owned())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 200);
}
