//! Signals: SIGTERM lets transactions finish, SIGHUP reloads users.

use std::time::Duration;

use crate::util::TestServer;

#[test]
fn sigterm_finishes_transaction_in_flight() {
    let mut server = TestServer::start();
    let mut busy = server.connect();
    busy.reply();
    busy.cmd("EHLO c");
    busy.cmd("MAIL FROM:<s@remote.test>");
    busy.cmd("RCPT TO:<bob@example.test>");
    busy.cmd("DATA");
    busy.send(b"Subject: late\r\n\r\nhalf");
    let mut idle = server.connect();
    idle.reply();
    server.signal("TERM");
    assert!(idle.reply().starts_with("421 4.3.2"));
    assert!(idle.closed());
    // New connections are refused; the one mid-message may finish.
    assert!(server.wait_log("stopping"));
    assert!(std::net::TcpStream::connect(server.addr).is_err());
    busy.send(b" done\r\n.\r\n");
    assert!(busy.reply().starts_with("250 2.0.0"));
    assert!(busy.reply().starts_with("421 4.3.2"));
    let status = wait_exit(&mut server);
    assert_eq!(status, Some(0));
    assert_eq!(server.maildir("bob", "example.test").len(), 1);
}

fn wait_exit(server: &mut TestServer) -> Option<i32> {
    for _ in 0..200 {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

#[test]
fn sighup_reloads_users_and_keeps_connections() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.reply();
    c.cmd("EHLO c");
    c.cmd("MAIL FROM:<>");
    assert!(
        c.cmd("RCPT TO:<dave@example.test>")
            .starts_with("550 5.1.1")
    );
    let users = server.dir.0.join("users");
    let mut text = std::fs::read_to_string(&users).unwrap();
    text.push_str("dave@example.test\n");
    std::fs::write(&users, text).unwrap();
    server.signal("HUP");
    assert!(server.wait_log("reloaded: 4 users"));
    assert!(c.cmd("RCPT TO:<dave@example.test>").starts_with("250"));
    // A broken file keeps the old users.
    std::fs::write(&users, "not an address\n").unwrap();
    server.signal("HUP");
    assert!(server.wait_log("reload failed"));
    assert!(c.cmd("RCPT TO:<bob@example.test>").starts_with("250"));
}
