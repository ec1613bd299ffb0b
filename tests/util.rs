//! `TestServer`: a real `postling serve` on a free loopback port, with its
//! own temporary folder, config, users and aliases; stopped on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir()
            .join(format!("postling-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub const USERS: &str = "alice@example.test:{SHA512-CRYPT}$6$x$y::::::\n\
                         bob@example.test\ncarol@other.test\n";
pub const ALIASES: &str = "team@example.test: alice@example.test, \
                           bob@example.test\n\
                           postmaster@example.test: alice@example.test\n\
                           @other.test: carol@other.test\n";

/// The postling binary Cargo built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_postling")
}

/// Writes a config (plus users and aliases) into `dir`; `extra` lines
/// override the defaults.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    std::fs::write(dir.join("users"), USERS).unwrap();
    std::fs::write(dir.join("aliases"), ALIASES).unwrap();
    let mut text = String::from(
        "hostname = mx.example.test\ndomains = example.test other.test\n\
         data_dir = data\nusers_file = users\naliases_file = aliases\n\
         listen_smtp = 127.0.0.1:0\nrecipient_delimiter = +\n\
         trusted_networks =\nrun_as = root\ndns_servers = 127.0.0.1:1\n\
         greet_delay = 0\n",
    );
    // Later keys would be "set twice": drop the defaults they replace.
    for line in extra.lines() {
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            text = text
                .lines()
                .filter(|l| !l.starts_with(&format!("{key} ")))
                .map(|l| format!("{l}\n"))
                .collect();
        }
    }
    text.push_str(extra);
    let path = dir.join("postling.conf");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running server.
pub struct TestServer {
    pub dir: TempDir,
    pub addr: SocketAddr,
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::with_config("")
    }

    pub fn with_config(extra: &str) -> TestServer {
        let dir = TempDir::new();
        let conf = write_config(&dir.0, extra);
        Self::spawn(dir, &conf)
    }

    pub fn spawn(dir: TempDir, conf: &Path) -> TestServer {
        let mut child = Command::new(binary())
            .args(["serve", "-c"])
            .arg(conf)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split("listening for SMTP on ").nth(1)
                {
                    let _ = tx.send(addr.trim().to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not start: {:?}", log.lock().unwrap());
            }
        };
        TestServer {
            dir,
            addr,
            child,
            log,
        }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.0.join("data")
    }

    /// Messages in a Maildir's `new/`, contents sorted.
    pub fn maildir(&self, user: &str, domain: &str) -> Vec<Vec<u8>> {
        let new = self
            .data_dir()
            .join("mail")
            .join(domain)
            .join(user)
            .join("new");
        let mut msgs: Vec<Vec<u8>> = match std::fs::read_dir(&new) {
            Ok(entries) => entries
                .map(|e| std::fs::read(e.unwrap().path()).unwrap())
                .collect(),
            Err(_) => Vec::new(),
        };
        msgs.sort();
        msgs
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits until the log has a line containing `needle`.
    pub fn wait_log(&self, needle: &str) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw SMTP client reading whole replies.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr).unwrap()
    }

    /// Connects, or says why not (a server that may be gone).
    pub fn try_connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Client { stream, reader })
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends, or says why not (a server that may have been killed).
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one reply (all its lines); empty at EOF.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    /// Sends a command and returns its reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// True once the server has closed the connection.
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(self.reader.read(&mut buf), Ok(0))
    }

    /// Greeting, EHLO, MAIL, RCPTs and DATA; returns the final reply.
    pub fn send_mail(
        &mut self,
        from: &str,
        to: &[&str],
        body: &[u8],
    ) -> String {
        assert!(self.reply().starts_with("220"));
        assert!(self.cmd("EHLO client.test").starts_with("250"));
        assert!(self.cmd(&format!("MAIL FROM:<{from}>")).starts_with("250"));
        for t in to {
            let r = self.cmd(&format!("RCPT TO:<{t}>"));
            assert!(r.starts_with("250"), "{t}: {r}");
        }
        assert!(self.cmd("DATA").starts_with("354"));
        self.send(body);
        self.send(b".\r\n");
        self.reply()
    }
}

/// Splits a stored message into (our trace headers, the rest).
pub fn strip_trace(msg: &[u8]) -> (String, Vec<u8>) {
    let text = String::from_utf8_lossy(msg);
    // Our trace: Return-Path, Delivered-To, Authentication-Results (for
    // a checked client), then Received, whose date ends it.
    let received = text.find("Received: ").expect("Received header");
    let end =
        received + text[received..].find(";\n\t").expect("Received date");
    let after = end + text[end..].find('\n').unwrap() + 1;
    let after = after + text[after..].find('\n').unwrap() + 1;
    (text[..after].to_string(), msg[after..].to_vec())
}
