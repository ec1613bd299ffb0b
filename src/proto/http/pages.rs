//! What the listener serves mail clients: Thunderbird's autoconfig,
//! Outlook's autodiscover, an Apple configuration profile, and the
//! MTA-STS policy (RFC 8461). Each is built from [`Site`], what the
//! config says of this server.

use std::fmt::Write;

/// How a client reaches one of our services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub port: u16,
    pub security: Security,
}

/// The security of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first octet (993, 995, 465).
    Implicit,
    /// STARTTLS (143, 110, 587).
    StartTls,
    /// No TLS configured at all.
    Plain,
}

/// MTA-STS's mode (RFC 8461 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StsMode {
    Enforce,
    Testing,
    None,
}

impl StsMode {
    pub fn name(self) -> &'static str {
        match self {
            StsMode::Enforce => "enforce",
            StsMode::Testing => "testing",
            StsMode::None => "none",
        }
    }
}

/// What the pages say of this server.
#[derive(Debug, Clone)]
pub struct Site {
    /// Our host name: every service's, and the MX.
    pub hostname: String,
    /// The mail domains we serve.
    pub domains: Vec<String>,
    pub imap: Option<Endpoint>,
    pub pop3: Option<Endpoint>,
    pub submission: Option<Endpoint>,
    pub sts_mode: StsMode,
    /// The policy's max_age, seconds.
    pub sts_max_age: u64,
    /// ACME's HTTP-01 tokens and their key authorizations, while an
    /// order is under way.
    pub challenges: Option<Challenges>,
}

/// HTTP-01 tokens and their answers, shared with the ACME helper.
pub type Challenges = std::sync::Arc<
    std::sync::Mutex<std::collections::HashMap<String, String>>,
>;

/// An address we may describe: ASCII, no characters XML or a plist
/// would need escaped beyond the five, at one of our domains.
pub fn our_address(site: &Site, address: &str) -> Option<(String, String)> {
    let address = address.trim();
    let (local, domain) = address.rsplit_once('@')?;
    let domain = domain.to_ascii_lowercase();
    let allowed = |b: u8| {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b)
    };
    if local.is_empty()
        || address.len() > 254
        || !local.bytes().all(allowed)
        || !site.domains.contains(&domain)
    {
        return None;
    }
    Some((format!("{local}@{domain}"), domain))
}

/// Escapes text for XML (and plist) content.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Thunderbird's autoconfig file (its "config-v1.1.xml" format) for
/// `domain`, the user name being the whole address.
pub fn autoconfig(site: &Site, domain: &str) -> String {
    let host = xml(&site.hostname);
    let mut out = String::new();
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <clientConfig version=\"1.1\">\n  <emailProvider id=\"{d}\">\n",
        d = xml(domain)
    );
    for d in &site.domains {
        let _ = writeln!(out, "    <domain>{}</domain>", xml(d));
    }
    let _ = write!(
        out,
        "    <displayName>{d} mail</displayName>\n    \
         <displayShortName>{d}</displayShortName>\n",
        d = xml(domain)
    );
    let server = |out: &mut String, tag: &str, kind: &str, e: Endpoint| {
        let socket = match e.security {
            Security::Implicit => "SSL",
            Security::StartTls => "STARTTLS",
            Security::Plain => "plain",
        };
        let _ = write!(
            out,
            "    <{tag} type=\"{kind}\">\n      <hostname>{host}</hostname>\n      \
             <port>{}</port>\n      <socketType>{socket}</socketType>\n      \
             <authentication>password-cleartext</authentication>\n      \
             <username>%EMAILADDRESS%</username>\n    </{tag}>\n",
            e.port
        );
    };
    if let Some(e) = site.imap {
        server(&mut out, "incomingServer", "imap", e);
    }
    if let Some(e) = site.pop3 {
        server(&mut out, "incomingServer", "pop3", e);
    }
    if let Some(e) = site.submission {
        server(&mut out, "outgoingServer", "smtp", e);
    }
    out.push_str("  </emailProvider>\n</clientConfig>\n");
    out
}

/// The address in an autodiscover request (its `EMailAddress`).
pub fn autodiscover_address(body: &[u8]) -> Option<String> {
    let open = b"<EMailAddress>";
    let start = memchr::memmem::find(body, open)? + open.len();
    let len = memchr::memmem::find(&body[start..], b"</EMailAddress>")?;
    String::from_utf8(body[start..start + len].to_vec()).ok()
}

/// Outlook's autodiscover answer (the "outlook" response schema).
pub fn autodiscover(site: &Site, address: &str) -> String {
    let host = xml(&site.hostname);
    let user = xml(address);
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  \
         <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    \
         <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n",
    );
    let protocol = |out: &mut String, kind: &str, e: Endpoint| {
        let (ssl, encryption) = match e.security {
            Security::Implicit => ("on", "SSL"),
            Security::StartTls => ("on", "TLS"),
            Security::Plain => ("off", "None"),
        };
        let _ = write!(
            out,
            "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{host}</Server>\n        \
             <Port>{}</Port>\n        <LoginName>{user}</LoginName>\n        \
             <DomainRequired>off</DomainRequired>\n        <SPA>off</SPA>\n        \
             <SSL>{ssl}</SSL>\n        <Encryption>{encryption}</Encryption>\n        \
             <AuthRequired>on</AuthRequired>\n      </Protocol>\n",
            e.port
        );
    };
    if let Some(e) = site.imap {
        protocol(&mut out, "IMAP", e);
    }
    if let Some(e) = site.pop3 {
        protocol(&mut out, "POP3", e);
    }
    if let Some(e) = site.submission {
        protocol(&mut out, "SMTP", e);
    }
    out.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
    out
}

/// An Apple configuration profile with one mail account for `address`
/// (IMAP, else POP3, and submission). Its identifiers are derived from
/// the address, so installing it again replaces the account.
pub fn mobileconfig(
    site: &Site,
    address: &str,
    domain: &str,
) -> Option<String> {
    let (incoming, kind) = match (site.imap, site.pop3) {
        (Some(e), _) => (e, "EmailTypeIMAP"),
        (None, Some(e)) => (e, "EmailTypePOP"),
        (None, None) => return None,
    };
    let outgoing = site.submission?;
    let tls = |e: Endpoint| match e.security {
        Security::Plain => "<false/>",
        _ => "<true/>",
    };
    let reverse: Vec<&str> = site.hostname.rsplit('.').collect();
    let id = xml(&format!("{}.postling", reverse.join(".")));
    let (profile_uuid, account_uuid) =
        (uuid(address, "profile"), uuid(address, "account"));
    let (host, user, domain) =
        (xml(&site.hostname), xml(address), xml(domain));
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
<plist version=\"1.0\">\n<dict>\n\
<key>PayloadContent</key>\n<array>\n<dict>\n\
<key>EmailAccountDescription</key><string>{user}</string>\n\
<key>EmailAccountName</key><string>{user}</string>\n\
<key>EmailAccountType</key><string>{kind}</string>\n\
<key>EmailAddress</key><string>{user}</string>\n\
<key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>\n\
<key>IncomingMailServerHostName</key><string>{host}</string>\n\
<key>IncomingMailServerPortNumber</key><integer>{in_port}</integer>\n\
<key>IncomingMailServerUseSSL</key>{in_tls}\n\
<key>IncomingMailServerUsername</key><string>{user}</string>\n\
<key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>\n\
<key>OutgoingMailServerHostName</key><string>{host}</string>\n\
<key>OutgoingMailServerPortNumber</key><integer>{out_port}</integer>\n\
<key>OutgoingMailServerUseSSL</key>{out_tls}\n\
<key>OutgoingMailServerUsername</key><string>{user}</string>\n\
<key>OutgoingPasswordSameAsIncomingPassword</key><true/>\n\
<key>PayloadDescription</key><string>Mail account {user}</string>\n\
<key>PayloadDisplayName</key><string>{user}</string>\n\
<key>PayloadIdentifier</key><string>{id}.account.{account_uuid}</string>\n\
<key>PayloadType</key><string>com.apple.mail.managed</string>\n\
<key>PayloadUUID</key><string>{account_uuid}</string>\n\
<key>PayloadVersion</key><integer>1</integer>\n\
</dict>\n</array>\n\
<key>PayloadDescription</key><string>Mail at {domain}</string>\n\
<key>PayloadDisplayName</key><string>{domain} mail</string>\n\
<key>PayloadIdentifier</key><string>{id}.{profile_uuid}</string>\n\
<key>PayloadRemovalDisallowed</key><false/>\n\
<key>PayloadType</key><string>Configuration</string>\n\
<key>PayloadUUID</key><string>{profile_uuid}</string>\n\
<key>PayloadVersion</key><integer>1</integer>\n\
</dict>\n</plist>\n",
        in_port = incoming.port,
        in_tls = tls(incoming),
        out_port = outgoing.port,
        out_tls = tls(outgoing),
    ))
}

/// A UUID-shaped name (version 5's layout) from SHA-256 of the parts:
/// the same address always gets the same one.
fn uuid(address: &str, part: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{part}\0{address}").as_bytes(),
    );
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The MTA-STS policy (RFC 8461 3.2): our host name is the MX.
pub fn sts_policy(site: &Site) -> String {
    format!(
        "version: STSv1\r\nmode: {}\r\nmx: {}\r\nmax_age: {}\r\n",
        site.sts_mode.name(),
        site.hostname,
        site.sts_max_age
    )
}

#[cfg(test)]
pub(crate) mod tests;
