//! Moving octets through a rustls session, the same for the server side
//! (client connections) and the client side (mail we send): decrypting
//! what the socket has, and encrypting and writing what we have, on a
//! non-blocking socket that mio reports edge-triggered.

use std::io::{self, Read, Write};

use rustls::ConnectionCommon;

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::tls_io";

/// What one read gave.
pub enum Input {
    /// Octets in the scratch buffer.
    Data(usize),
    /// Nothing more for now (the socket would block).
    Drained,
    /// The peer closed or the socket failed.
    Gone,
    /// A TLS handshake just finished.
    Handshaked,
    /// The TLS session failed (a bad record, a refused certificate):
    /// the connection is over, and counted as a TLS failure.
    TlsFailed,
}

/// Reads plaintext into `scratch`, pulling records off `stream` as
/// needed. `announced` is set once the end of the handshake was
/// reported.
pub fn read<T, S: Read + Write>(
    tls: &mut ConnectionCommon<T>,
    stream: &mut S,
    scratch: &mut [u8],
    announced: &mut bool,
) -> Input {
    loop {
        if !tls.is_handshaking() && !*announced {
            *announced = true;
            return Input::Handshaked;
        }
        match tls.reader().read(scratch) {
            Ok(0) => return Input::Gone,
            Ok(n) => return Input::Data(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return Input::Gone,
        }
        match tls.read_tls(stream) {
            Ok(0) => return Input::Gone,
            Ok(_) => {
                if let Err(e) = tls.process_new_packets() {
                    log::info!(target: LOG_TARGET, "TLS error: {e}");
                    // Send the alert rustls queued, best effort.
                    let _ = tls.write_tls(stream);
                    return Input::TlsFailed;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Input::Drained;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Input::Gone,
        }
    }
}

/// Encrypts what `wbuf` holds (as much as the session's buffer limit
/// takes) and writes records until the socket would block or nothing is
/// left; `closing` sends close_notify once `wbuf` is empty. Returns the
/// octets the socket took.
pub fn flush<T, S: Read + Write>(
    tls: &mut ConnectionCommon<T>,
    stream: &mut S,
    wbuf: &mut Vec<u8>,
    closing: bool,
) -> io::Result<usize> {
    let mut written = 0;
    // Until the socket would block or nothing is left: mio is
    // edge-triggered, so stopping while the socket still has room would
    // wait for a writable edge that never comes.
    loop {
        if !wbuf.is_empty() {
            // What does not fit stays in wbuf, which stops the producer
            // once it is over its cap.
            let n = tls.writer().write(wbuf)?;
            wbuf.drain(..n);
        }
        if closing && wbuf.is_empty() {
            // A clean TLS end, so the peer sees EOF, not a truncation
            // attack; rustls sends the alert only once.
            tls.send_close_notify();
        }
        if !tls.wants_write() {
            break;
        }
        match tls.write_tls(stream) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// Writes `wbuf` in the clear until the socket would block.
pub fn flush_plain<S: Write>(
    stream: &mut S,
    wbuf: &mut Vec<u8>,
) -> io::Result<usize> {
    let mut written = 0;
    while written < wbuf.len() {
        match stream.write(&wbuf[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    wbuf.drain(..written);
    Ok(written)
}

/// Reads in the clear into `scratch`.
pub fn read_plain<S: Read>(stream: &mut S, scratch: &mut [u8]) -> Input {
    loop {
        return match stream.read(scratch) {
            Ok(0) => Input::Gone,
            Ok(n) => Input::Data(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Input::Drained,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => Input::Gone,
        };
    }
}
