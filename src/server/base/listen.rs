//! Listening sockets. IPv6 ones are IPV6_V6ONLY, so `0.0.0.0:25` and
//! `[::]:25` can both be configured, as with Postfix and Dovecot.

use std::io;
use std::net::SocketAddr;

use rustix::net::{AddressFamily, SocketType, bind, listen, socket, sockopt};

/// Pending connections the kernel may hold (Postfix uses 100).
const BACKLOG: i32 = 128;

/// Binds a non-blocking listener on `addr`.
pub fn bind_listener(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let fd = socket(family, SocketType::STREAM, None)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    if addr.is_ipv6() {
        sockopt::set_ipv6_v6only(&fd, true)?;
    }
    bind(&fd, &addr)?;
    listen(&fd, BACKLOG)?;
    let std_listener = std::net::TcpListener::from(fd);
    std_listener.set_nonblocking(true)?;
    Ok(mio::net::TcpListener::from_std(std_listener))
}
