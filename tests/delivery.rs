//! What lands on disk: mbox format, write failures, and crash safety.

use std::time::Duration;

use crate::util::{Client, TestServer, strip_trace};

#[test]
fn mbox_delivery_quotes_from_lines() {
    let server = TestServer::with_config("mailbox_format = mbox\n");
    for i in 0..2 {
        let mut c = server.connect();
        let body =
            format!("Subject: m{i}\r\n\r\nFrom the start\r\n>From quoted\r\n");
        let r = c.send_mail(
            "s@remote.test",
            &["bob@example.test"],
            body.as_bytes(),
        );
        assert!(r.starts_with("250"), "{r}");
    }
    let path = server.data_dir().join("mail/example.test/bob/INBOX");
    let text = std::fs::read_to_string(path).unwrap();
    let froms: Vec<&str> =
        text.lines().filter(|l| l.starts_with("From ")).collect();
    assert_eq!(froms.len(), 2, "{text}");
    assert!(froms[0].starts_with("From s@remote.test "));
    assert!(
        text.contains("\n>From the start\n>>From quoted\n\n"),
        "{text}"
    );
    assert!(text.contains("\n\nFrom s@remote.test "), "{text}");
    assert!(
        !server
            .data_dir()
            .join("mail/example.test/bob/INBOX.lock")
            .exists()
    );
}

#[test]
fn write_failure_is_452_and_leaves_nothing() {
    let server = TestServer::start();
    // A file where bob's mailbox folder should be: every write fails.
    let domain = server.data_dir().join("mail/example.test");
    std::fs::create_dir_all(&domain).unwrap();
    std::fs::write(domain.join("bob"), b"in the way").unwrap();
    let mut c = server.connect();
    let r = c.send_mail(
        "s@remote.test",
        &["alice@example.test", "bob@example.test"],
        b"Subject: f\r\n\r\nx\r\n",
    );
    assert!(r.starts_with("452 4.3.1"), "{r}");
    // All or nothing: alice got no copy either, and tmp/ is clean.
    assert!(server.maildir("alice", "example.test").is_empty());
    let tmp = domain.join("alice/tmp");
    let left = std::fs::read_dir(tmp).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0);
}

/// Kill -9 the server while 20 clients send: every message that got 250
/// is in the mailbox whole, and nothing partial sits in new/.
#[test]
fn crash_keeps_every_acknowledged_message() {
    let server = TestServer::with_config("max_connections_per_ip = 50\n");
    let addr = server.addr;
    let body = |i: usize, n: usize| {
        format!(
            "Subject: c{i}-{n}\r\n\r\n{}\r\nend {i}-{n}\r\n",
            "line\r\n".repeat(2000)
        )
    };
    let acks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let senders: Vec<_> = (0..20)
        .map(|i| {
            let acks = std::sync::Arc::clone(&acks);
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for n in 0..1000 {
                    // The kill may come between two messages.
                    let Ok(mut c) = Client::try_connect(addr) else {
                        break;
                    };
                    c.stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    if !c.reply().starts_with("220") {
                        break;
                    }
                    let steps = [
                        "EHLO c",
                        "MAIL FROM:<s@remote.test>",
                        "RCPT TO:<bob@example.test>",
                        "DATA",
                    ];
                    if steps.iter().any(|s| c.cmd(s).is_empty()) {
                        break;
                    }
                    // The kill may also come while the body is on its way.
                    let sent = c
                        .try_send(body(i, n).as_bytes())
                        .and_then(|()| c.try_send(b".\r\n"));
                    if sent.is_ok() && c.reply().starts_with("250") {
                        acked.push(n);
                        acks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    } else {
                        break;
                    }
                }
                acked
            })
        })
        .collect();
    // The kill comes while the senders are in full flow: once some
    // messages have had their 250 (bounded: a loaded machine, whose
    // flushes are slow, takes longer to the first).
    let since = std::time::Instant::now();
    while acks.load(std::sync::atomic::Ordering::SeqCst) < 20
        && since.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let acked: Vec<Vec<usize>> =
        senders.into_iter().map(|t| t.join().unwrap()).collect();
    let total: usize = acked.iter().map(Vec::len).sum();
    assert!(total > 0, "no message was acknowledged before the kill");
    let stored = server.maildir("bob", "example.test");
    let bodies: Vec<Vec<u8>> =
        stored.iter().map(|m| strip_trace(m).1).collect();
    for (i, ns) in acked.iter().enumerate() {
        for &n in ns {
            let want = body(i, n).replace("\r\n", "\n").into_bytes();
            assert!(
                bodies.contains(&want),
                "acked message {i}-{n} missing or partial"
            );
        }
    }
    // Every file in new/ is whole (at most the unacknowledged extra).
    for b in &bodies {
        let text = String::from_utf8_lossy(b);
        assert!(
            text.trim_end()
                .rsplit('\n')
                .next()
                .unwrap()
                .starts_with("end "),
            "partial file"
        );
    }
    assert!(bodies.len() >= total);
}
