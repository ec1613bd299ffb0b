//! Parser throughput: SMTP command lines and the DATA scanner (MB/s);
//! what checking a message from a stranger costs: the helper's reading
//! (header, body hash) and one signature's check, RSA 2048 and Ed25519.
//! The learning filter: a 10 KiB message tokenized and scored against
//! a trained database, and one lesson. `make bench` runs these; `make bench-smtp` compares the whole server
//! with Postfix.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use postling::proto::smtp::body::{Body, DotReader};
use postling::proto::smtp::command;

fn commands(c: &mut Criterion) {
    let lines: [&[u8]; 4] = [
        b"EHLO client.example.org",
        b"MAIL FROM:<sender.name@example.org> SIZE=123456 BODY=8BITMIME",
        b"RCPT TO:<recipient+tag@example.test>",
        b"DATA",
    ];
    let total: usize = lines.iter().map(|l| l.len()).sum();
    let mut group = c.benchmark_group("command");
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("parse transaction", |b| {
        b.iter(|| {
            for line in lines {
                let _ = black_box(command::parse(black_box(line)));
            }
        })
    });
    group.finish();
}

/// A 100 KiB message of 76-column text lines, some dot-stuffed.
fn sample_message() -> Vec<u8> {
    let mut msg = b"Subject: bench\r\nFrom: a@b.test\r\n\r\n".to_vec();
    let mut i = 0;
    while msg.len() < 100 * 1024 {
        if i % 40 == 0 {
            msg.extend_from_slice(b"..a line that starts with a dot\r\n");
        }
        msg.extend_from_slice(&[b'x'; 74]);
        msg.extend_from_slice(b"\r\n");
        i += 1;
    }
    msg.extend_from_slice(b".\r\n");
    msg
}

fn data_scanner(c: &mut Criterion) {
    let msg = sample_message();
    let mut group = c.benchmark_group("data");
    group.throughput(Throughput::Bytes(msg.len() as u64));
    for chunk in [msg.len(), 16 * 1024, 1460] {
        group.bench_function(format!("dot reader, {chunk} B reads"), |b| {
            b.iter(|| {
                let mut reader = DotReader::new();
                let mut body = Body::new(1 << 30);
                let mut data = Vec::with_capacity(msg.len());
                for part in msg.chunks(chunk) {
                    let (_, end) = reader.feed(part, &mut body, &mut data);
                    if end {
                        break;
                    }
                }
                black_box((body.finish(&mut data), data))
            })
        });
    }
    group.finish();
}

/// A 2 KiB message as the spool holds it (LF line ends), signed.
fn signed_message(key: postling::proto::dkim::sign::Key) -> (Vec<u8>, String) {
    use postling::proto::dkim::canon::BodyHash;
    let head = b"From: Sender <s@remote.test>\nTo: b@example.test\nSubject: figures\n\
Date: Sun, 06 Dec 2026 10:00:00 +0000\nMessage-ID: <bench@remote.test>\n";
    let body =
        b"The quarterly figures are attached; the board meets on Thursday.\n"
            .repeat(30);
    let mut bh = BodyHash::default();
    bh.update(&body);
    let record = key.dns_record();
    let signer = postling::proto::dkim::sign::Signer {
        domain: "remote.test".into(),
        selector: "s".into(),
        key,
    };
    let field = signer
        .sign(head, &bh.finish(), 1_800_000_000)
        .expect("signs");
    let msg = [field.as_bytes(), head, b"\n", &body].concat();
    (msg, record)
}

/// The body hash over 100 KiB of prose, as a signed message's body is
/// hashed on its way to the spool: the CPU a large message's check adds.
fn body_hashes(
    group: &mut criterion::BenchmarkGroup<
        '_,
        criterion::measurement::WallTime,
    >,
) {
    use postling::proto::dkim::canon::{BodyHash, Canon};
    let line = b"The quarterly figures are attached; the board meets on Thursday.  \r\n";
    let body: Vec<u8> =
        line.iter().copied().cycle().take(100 * 1024).collect();
    group.throughput(Throughput::Bytes(body.len() as u64));
    for (name, canon) in
        [("relaxed", Canon::Relaxed), ("simple", Canon::Simple)]
    {
        group.bench_function(format!("body hash 100 KiB, {name}"), |b| {
            b.iter(|| {
                let mut hash = BodyHash::new(canon, None);
                for piece in body.chunks(16 * 1024) {
                    hash.update(black_box(piece));
                }
                hash.finish()
            })
        });
    }
    group.throughput(Throughput::Elements(1));
}

fn checks(c: &mut Criterion) {
    use postling::inbound::read;
    use postling::proto::dkim::sign::{Key, new_ed25519, to_pem};
    use postling::proto::dkim::tags;
    use postling::store::content::Content;
    let rsa = Key::from_pem(include_str!("dkim-bench-rsa2048.pem"))
        .expect("the bench key");
    let ed =
        Key::from_pem(&to_pem("PRIVATE KEY", &new_ed25519().expect("a key")))
            .expect("reads");
    let mut group = c.benchmark_group("checks");
    body_hashes(&mut group);
    for (name, key) in [("rsa2048", rsa), ("ed25519", ed)] {
        let (msg, record) = signed_message(key);
        let key = tags::key(&record).expect("key");
        let reading = || {
            let mut content =
                Content::in_memory(msg.clone(), std::time::UNIX_EPOCH);
            read::read(
                &mut content,
                0,
                "mx.example.test",
                read::Wanted {
                    dkim: true,
                    arc: true,
                },
                1_800_000_000,
            )
            .expect("reads")
        };
        group.bench_function(
            format!("read 2 KiB message, {name} signature"),
            |b| b.iter(|| black_box(reading())),
        );
        group.bench_function(format!("verify {name}"), |b| {
            b.iter_batched(
                || match reading().dkim.pop() {
                    Some(read::Dkim::Ready(c)) => vec![(*c, Ok(key.clone()))],
                    _ => panic!("no signature"),
                },
                |items| {
                    let outcomes = read::check_all(items);
                    assert_eq!(outcomes[0].name(), "pass");
                    outcomes
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// A message of about 10 KiB: a text part and its HTML twin, words
/// drawn from a vocabulary of 60,000 by a fixed sequence.
fn ten_kib_message(seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut word = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        format!("w{}", (x >> 33) % 60_000)
    };
    let text: Vec<String> = (0..1400).map(|_| word()).collect();
    let mut msg = format!(
        "From: Someone <a{seed}@sender.example>\nTo: bench@example.test\nSubject: {} {} {}\n\
         Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\n",
        word(),
        word(),
        word()
    );
    msg.push_str(&text[..700].join(" "));
    msg.push_str("\n--b\nContent-Type: text/html\n\n<html><body><p>");
    msg.push_str(&text[700..].join(" <b>"));
    msg.push_str("</p><a href=\"https://link.example/x\">here</a></body></html>\n--b--\n");
    msg.into_bytes()
}

fn spam_filter(c: &mut Criterion) {
    use postling::spam::{score, tokens, words};
    let mut db = words::Words::default();
    for i in 0..400 {
        let lesson = if i % 2 == 0 {
            words::Lesson::Spam
        } else {
            words::Lesson::Ham
        };
        db.learn(&tokens::of(&ten_kib_message(i)).hashes, lesson);
    }
    let msg = ten_kib_message(9999);
    let mut group = c.benchmark_group("spam");
    group.throughput(Throughput::Bytes(msg.len() as u64));
    group.bench_function(format!("score {} KiB", msg.len() / 1024), |b| {
        b.iter(|| score::score(&db, &tokens::of(black_box(&msg)).hashes))
    });
    let hashes = tokens::of(&msg).hashes;
    group.bench_function(format!("learn, {} tokens known", db.len()), |b| {
        b.iter_batched(
            || db.clone(),
            |mut d| d.learn(black_box(&hashes), words::Lesson::Spam),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// A typical user's script of 50 rules, none of which matches the
/// bench message (so every test is evaluated): mailing lists by
/// List-Id, senders by address and domain, subjects by words and
/// patterns, one vacation at the end.
fn fifty_rules() -> String {
    let mut s = String::from(
        "require [\"fileinto\", \"envelope\", \"variables\", \"imap4flags\", \"vacation\", \"body\"];\n",
    );
    for i in 0..50 {
        let rule = match i % 5 {
            0 => format!(
                "if header :contains \"list-id\" \"list{i}.example.org\" {{ fileinto \"Lists.l{i}\"; stop; }}\n"
            ),
            1 => format!(
                "if address :is \"from\" \"boss{i}@work.example\" {{ addflag \"\\\\Flagged\"; fileinto \"Work\"; }}\n"
            ),
            2 => format!(
                "if address :domain :is [\"from\", \"sender\"] \"shop{i}.example\" {{ fileinto \"Shopping\"; }}\n"
            ),
            3 => format!(
                "if header :matches \"subject\" \"*[ticket-{i}*]*\" {{ set \"t\" \"${{2}}\"; fileinto \"Tickets\"; }}\n"
            ),
            _ => format!(
                "if allof (envelope :domain :is \"from\" \"news{i}.example\", not exists \"x-keep\") {{ discard; }}\n"
            ),
        };
        s.push_str(&rule);
    }
    s.push_str("vacation :days 7 :subject \"Away\" \"I am away.\";\n");
    s
}

fn sieve(c: &mut Criterion) {
    use postling::proto::sieve::{compile, run};
    use postling::sieve::message::Mail;
    let script =
        compile::compile(&fifty_rules()).expect("the bench script compiles");
    eprintln!(
        "sieve: the 50-rule script compiled holds about {} octets",
        script.size
    );
    let msg = ten_kib_message(4242);
    let root = std::path::Path::new("/nonexistent/postling-bench");
    let fmt = postling::config::MailboxFormat::Maildir;
    let mut group = c.benchmark_group("sieve");
    group.bench_function("compile 50 rules", |b| {
        b.iter(|| compile::compile(black_box(&fifty_rules())).map(|s| s.size))
    });
    let mail = Mail::new(
        &msg,
        msg.len() as u64,
        "a@sender.example",
        "bench@example.test",
        root,
        fmt,
    );
    group.bench_function("run 50 rules", |b| {
        b.iter(|| run::run(&[&script], black_box(&mail)))
    });
    group.bench_function("read the header and run 50 rules", |b| {
        b.iter(|| {
            let mail = Mail::new(
                black_box(&msg),
                msg.len() as u64,
                "a@sender.example",
                "bench@example.test",
                root,
                fmt,
            );
            run::run(&[&script], &mail)
        })
    });
    group.finish();
}

criterion_group!(benches, commands, data_scanner, checks, spam_filter, sieve);
criterion_main!(benches);
