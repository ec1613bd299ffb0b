//! `postling dkim keygen`: a DKIM key on disk and the DNS record that
//! publishes it.

/// `postling dkim keygen`: writes a new key to `out` (0600, never over
/// an existing file) and returns the DNS record to publish. RSA keys
/// come from `openssl genpkey` (ring signs with RSA but makes no RSA
/// keys); Ed25519 keys from ring.
pub fn dkim_keygen(
    domain: &str,
    selector: &str,
    ed25519: bool,
    out: &std::path::Path,
) -> Result<String, String> {
    use crate::proto::dkim::sign::{Key, new_ed25519, to_pem};
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if !crate::config::is_domain(domain)
        || selector.is_empty()
        || !selector
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(
            "a domain and a selector (letters, digits, -) are needed".into()
        );
    }
    let pem = if ed25519 {
        to_pem("PRIVATE KEY", &new_ed25519()?)
    } else {
        let made = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .output()
            .map_err(|e| {
                format!("openssl: {e} (install openssl, or use --ed25519)")
            })?;
        if !made.status.success() {
            return Err(format!(
                "openssl failed: {}",
                String::from_utf8_lossy(&made.stderr).trim()
            ));
        }
        String::from_utf8_lossy(&made.stdout).into_owned()
    };
    let key = Key::from_pem(&pem)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", out.display()))?;
    // TXT strings are at most 255 octets: a long key is several.
    let record = key.dns_record();
    let strings: Vec<String> = record
        .as_bytes()
        .chunks(250)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    Ok(format!(
        "{selector}._domainkey.{domain}. IN TXT ( {} )\n\nPublish this record, then add to the config:\n  dkim_keys = {domain}:{selector}:{}",
        strings.join(" "),
        out.display()
    ))
}
