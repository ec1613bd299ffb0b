//! Parser throughput: SMTP command lines and the DATA scanner (MB/s).
//! `make bench` runs these; `make bench-smtp` compares the whole server
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

criterion_group!(benches, commands, data_scanner);
criterion_main!(benches);
