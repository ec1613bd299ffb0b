//! One HTTP/1.1 connection, sans-I/O: fed octets, it writes responses
//! and says what the loop must do. Keep-alive and pipelining work; any
//! request we refuse is answered with its 4xx or 5xx and the connection
//! closes, so a confused client never leaves half a request behind.

use std::rc::Rc;

use super::pages::{self, Site};
use super::request::{self, Parsed, Request};

/// What the loop does after a feed.
#[derive(Debug, PartialEq, Eq)]
pub enum HttpStep {
    /// Read on.
    Continue,
    /// Flush and close.
    Close,
    /// Answer `/metrics` (the loop has the figures), then read on or
    /// close.
    Metrics { close: bool },
}

/// An HTTP connection.
pub struct Http {
    site: Rc<Site>,
    /// Over TLS (the MTA-STS policy is served only there).
    https: bool,
    /// The client may read `/metrics`.
    metrics_allowed: bool,
    /// Part of a request is waiting.
    partial: bool,
    /// Now, as responses' Date field gives it: the loop sets it.
    date: String,
}

const PLAIN: &str = "text/plain; charset=utf-8";

impl Http {
    pub fn new(site: Rc<Site>, https: bool, metrics_allowed: bool) -> Http {
        Http {
            site,
            https,
            metrics_allowed,
            partial: false,
            date: String::new(),
        }
    }

    /// The time for the responses that follow (HTTP's IMF-fixdate).
    pub fn set_date(&mut self, date: String) {
        self.date = date;
    }

    /// Answers every whole request in `input`; returns the octets used.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> (usize, HttpStep) {
        let mut used = 0;
        loop {
            // A client that pipelines without reading waits for room:
            // the rest stays in its buffer, and the socket.
            if out.len() >= crate::proto::OUTPUT_CAP {
                return (used, HttpStep::Continue);
            }
            let rest = &input[used..];
            match request::parse(rest) {
                Parsed::Partial => {
                    self.partial = !rest.is_empty();
                    return (used, HttpStep::Continue);
                }
                Parsed::Bad(status) => {
                    self.partial = false;
                    let text = format!("{}\n", reason(status));
                    respond(
                        out,
                        &self.date,
                        status,
                        PLAIN,
                        text.as_bytes(),
                        true,
                        &[],
                    );
                    return (input.len(), HttpStep::Close);
                }
                Parsed::Done(req, n) => {
                    used += n;
                    self.partial = false;
                    if let Some(step) = self.answer(&req, out) {
                        return (used, step);
                    }
                    if req.close {
                        return (used, HttpStep::Close);
                    }
                }
            }
        }
    }

    /// Writes the answer to `req`; Some when the loop must act.
    fn answer(
        &self,
        req: &Request<'_>,
        out: &mut Vec<u8>,
    ) -> Option<HttpStep> {
        let close = req.close;
        let path = req.path;
        let is = |p: &str| path.eq_ignore_ascii_case(p.as_bytes());
        let host = host_name(req.host);
        let (get, post) = (req.method == b"GET", req.method == b"POST");
        let refuse = |out: &mut Vec<u8>, allow: &str| {
            let allow = format!("Allow: {allow}");
            respond(
                out,
                &self.date,
                405,
                PLAIN,
                b"Method Not Allowed\n",
                close,
                &[&allow],
            );
        };
        if is("/autodiscover/autodiscover.xml") {
            if !post {
                refuse(out, "POST");
                return None;
            }
            let page = pages::autodiscover_address(req.body)
                .and_then(|a| pages::our_address(&self.site, &a))
                .map(|(address, _)| pages::autodiscover(&self.site, &address));
            let xml = "application/xml; charset=utf-8";
            match page {
                Some(p) => respond(
                    out,
                    &self.date,
                    200,
                    xml,
                    p.as_bytes(),
                    close,
                    &[],
                ),
                None => not_found(out, &self.date, close),
            }
            return None;
        }
        if !get {
            refuse(out, "GET");
            return None;
        }
        if is("/mail/config-v1.1.xml")
            || is("/.well-known/autoconfig/mail/config-v1.1.xml")
        {
            match self.autoconfig_domain(req.query, &host) {
                Some(d) => {
                    let xml = pages::autoconfig(&self.site, &d);
                    let kind = "text/xml; charset=utf-8";
                    respond(
                        out,
                        &self.date,
                        200,
                        kind,
                        xml.as_bytes(),
                        close,
                        &[],
                    );
                }
                None => not_found(out, &self.date, close),
            }
        } else if is("/email.mobileconfig") {
            self.profile(req.query, close, out);
        } else if path == b"/.well-known/mta-sts.txt" {
            // RFC 8461 3.3: fetched over HTTPS from mta-sts.DOMAIN only.
            let ours = host
                .strip_prefix("mta-sts.")
                .is_some_and(|d| self.site.domains.iter().any(|x| x == d));
            match self.https && ours {
                true => {
                    let policy = pages::sts_policy(&self.site);
                    respond(
                        out,
                        &self.date,
                        200,
                        PLAIN,
                        policy.as_bytes(),
                        close,
                        &[],
                    );
                }
                false => not_found(out, &self.date, close),
            }
        } else if let Some(token) =
            path.strip_prefix(b"/.well-known/acme-challenge/")
        {
            // RFC 8555 8.3: the key authorization, as text.
            let answer = self.site.challenges.as_ref().and_then(|c| {
                let token = std::str::from_utf8(token).ok()?;
                c.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(token)
                    .cloned()
            });
            match answer {
                Some(a) => respond(
                    out,
                    &self.date,
                    200,
                    "application/octet-stream",
                    a.as_bytes(),
                    close,
                    &[],
                ),
                None => not_found(out, &self.date, close),
            }
        } else if path == b"/metrics" {
            if self.metrics_allowed {
                return Some(HttpStep::Metrics { close });
            }
            respond(out, &self.date, 403, PLAIN, b"Forbidden\n", close, &[]);
        } else {
            not_found(out, &self.date, close);
        }
        None
    }

    /// An Apple profile for the address the query names.
    fn profile(&self, query: &[u8], close: bool, out: &mut Vec<u8>) {
        let page = request::query_value(query, "emailaddress")
            .and_then(|a| pages::our_address(&self.site, &a))
            .and_then(|(a, d)| {
                Some((pages::mobileconfig(&self.site, &a, &d)?, d))
            });
        let Some((profile, domain)) = page else {
            return not_found(out, &self.date, close);
        };
        let disposition = format!(
            "Content-Disposition: attachment; filename=\"{domain}.mobileconfig\""
        );
        let kind = "application/x-apple-aspen-config";
        respond(
            out,
            &self.date,
            200,
            kind,
            profile.as_bytes(),
            close,
            &[&disposition],
        );
    }

    /// The domain an autoconfig request is for: the address asked
    /// about, else the Host the client used (`autoconfig.DOMAIN`).
    fn autoconfig_domain(&self, query: &[u8], host: &str) -> Option<String> {
        if let Some(a) = request::query_value(query, "emailaddress") {
            return pages::our_address(&self.site, &a).map(|(_, d)| d);
        }
        let domain = host.strip_prefix("autoconfig.").unwrap_or(host);
        self.site.domains.iter().find(|d| *d == domain).cloned()
    }

    /// True if closing now cuts no request short.
    pub fn is_idle(&self) -> bool {
        !self.partial
    }

    /// The connection's time ran out: a request under way gets 408.
    pub fn timed_out(&mut self, out: &mut Vec<u8>) {
        if self.partial {
            respond(
                out,
                &self.date,
                408,
                PLAIN,
                b"Request Timeout\n",
                true,
                &[],
            );
        }
    }

    /// The server is stopping.
    pub fn shutdown(&mut self, out: &mut Vec<u8>) {
        if self.partial {
            respond(
                out,
                &self.date,
                503,
                PLAIN,
                b"Service Unavailable\n",
                true,
                &[],
            );
        }
    }
}

/// The Host field's name, lower-cased, without its port.
fn host_name(field: &[u8]) -> String {
    let host = String::from_utf8_lossy(field).to_ascii_lowercase();
    match host.rsplit_once(':') {
        Some((name, port))
            if !name.contains(':')
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            name.to_string()
        }
        _ => host,
    }
}

fn not_found(out: &mut Vec<u8>, date: &str, close: bool) {
    respond(out, date, 404, PLAIN, b"Not Found\n", close, &[]);
}

/// Writes one response: status line, fields, body.
pub fn respond(
    out: &mut Vec<u8>,
    date: &str,
    status: u16,
    content_type: &str,
    body: &[u8],
    close: bool,
    extra: &[&str],
) {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nDate: {date}\r\nServer: postling\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\
         X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n",
        reason(status),
        body.len()
    );
    for field in extra {
        head.push_str(field);
        head.push_str("\r\n");
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
}

/// The reason phrase of the statuses we send.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests;
