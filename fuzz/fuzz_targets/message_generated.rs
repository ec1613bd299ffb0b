//! Messages built from a recipe: each pair of input octets picks a
//! piece of header or MIME syntax (encoded words, reply markers, blobs,
//! address specials, message ids, parameters with RFC 2231 parts,
//! boundaries, nested parts) and how often to repeat it, so a small
//! input stands for a large hostile message: the shapes that once made
//! parsers quadratic or recursive. The folder then goes through the
//! whole content pipeline (see common/pipeline.rs).
#![no_main]

#[path = "common/pipeline.rs"]
mod pipeline;

use libfuzzer_sys::fuzz_target;

const PIECES: &[&[u8]] = &[
    b"=?", b"?=", b"=?utf-8?Q?", b"=?utf-8*en?B?", b"=?a?b?c ", b"\xc3\xa9",
    b"Re: ", b"Fwd: ", b"[fwd: ", b"]", b"[", b" (fwd)", b"re[2]:",
    b"<", b">", b"@", b".", b":", b";", b",", b"\"", b"(", b")", b"\\",
    b"<a@b> ", b"<a@b", b"a@b, ", b"g: a@b;", b"<@r:x@y>",
    b"\r\n ", b"\r\n", b" ", b"\t",
    b"Subject: ", b"From: ", b"To: ", b"Cc: ", b"Date: ", b"Message-ID: ",
    b"References: ", b"In-Reply-To: ",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain; name*0*=utf-8''a%C3; name*1*=%A9; name*=x\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename=\"x\"\r\n",
    b"\r\n--b\r\n", b"\r\n--b--\r\n", b"\r\n\r\n", b"=C3=A9=\r\n", b"QUJD",
    b"1 Feb 2008 00:00 +0100", b"99999999999 Feb",
];

/// At most this many octets of message in all.
const MAX_BUILT: usize = 2 << 20;

fuzz_target!(|data: &[u8]| {
    let mut msgs: Vec<Vec<u8>> = vec![Vec::new()];
    let mut built = 0;
    for pair in data.chunks(2) {
        let pick = pair[0] as usize;
        if pick == 255 && msgs.len() < 8 {
            msgs.push(Vec::new());
            continue;
        }
        let piece = PIECES[pick % PIECES.len()];
        // The second octet: how often, up to tens of thousands.
        let times = pair.get(1).map_or(1, |&r| match r {
            0..=127 => 1 + r as usize % 4,
            _ => 1 + (r as usize - 127) * (r as usize - 127),
        });
        for _ in 0..times {
            if built + piece.len() > MAX_BUILT {
                break;
            }
            msgs.last_mut().unwrap().extend_from_slice(piece);
            built += piece.len();
        }
    }
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    pipeline::run(&refs);
});
