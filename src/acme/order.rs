//! One certificate from an ACME CA (RFC 8555 7): the account (made once,
//! its key kept), an order for our names, HTTP-01 for each (answered by
//! our web listener, or files in `acme_webroot`), the CSR, the
//! certificate. Blocking: it runs on the ACME helper thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding};

use super::client::{Client, Response};
use crate::proto::acme::csr;
use crate::proto::acme::jws::{AccountKey, Signer};
use crate::proto::json::{self, Value, quote};

/// HTTP-01 tokens and their key authorizations, as the web listener
/// serves them.
pub type Challenges = Arc<Mutex<HashMap<String, String>>>;

/// What an order needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub directory: String,
    pub email: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// The names to certify, `hostname` first.
    pub names: Vec<String>,
    /// `{data_dir}/acme`: the account key, the certificate and its key.
    pub dir: PathBuf,
    /// Write challenges here instead (behind another web server).
    pub webroot: Option<PathBuf>,
}

/// Polls of an authorization or order, at most.
const POLLS: u32 = 60;

struct Session<'a> {
    client: Client,
    key: AccountKey,
    nonce: String,
    new_nonce: String,
    kid: Option<String>,
    settings: &'a Settings,
}

/// Gets a certificate and writes it, with its key, into `settings.dir`
/// (`cert.pem`, `key.pem`, 0600).
pub fn obtain(
    settings: &Settings,
    challenges: &Challenges,
) -> Result<(), String> {
    let client = Client::new(settings.ca_file.as_deref())?;
    let directory = client.request("GET", &settings.directory, None)?;
    let directory = json_of(&directory)?;
    let url = |name: &str| -> Result<String, String> {
        directory
            .get(name)
            .and_then(Value::str)
            .map(str::to_string)
            .ok_or_else(|| format!("the ACME directory has no {name}"))
    };
    let (new_nonce, new_account, new_order) =
        (url("newNonce")?, url("newAccount")?, url("newOrder")?);
    let key = AccountKey::from_pkcs8(&account_key(&settings.dir)?)
        .map_err(str::to_string)?;
    let mut s = Session {
        client,
        key,
        nonce: String::new(),
        new_nonce,
        kid: None,
        settings,
    };
    s.fresh_nonce()?;
    let contact = settings.email.as_ref().map_or(String::new(), |e| {
        format!(",\"contact\":[{}]", quote(&format!("mailto:{e}")))
    });
    let account = s.post(
        &new_account,
        Some(&format!("{{\"termsOfServiceAgreed\":true{contact}}}")),
    )?;
    s.kid = Some(
        account
            .header("Location")
            .ok_or("no account URL")?
            .to_string(),
    );
    let identifiers: Vec<String> = settings
        .names
        .iter()
        .map(|n| format!("{{\"type\":\"dns\",\"value\":{}}}", quote(n)))
        .collect();
    let order = s.post(
        &new_order,
        Some(&format!("{{\"identifiers\":[{}]}}", identifiers.join(","))),
    )?;
    let order_url =
        order.header("Location").ok_or("no order URL")?.to_string();
    let order = json_of(&order)?;
    for authz in order
        .get("authorizations")
        .map(Value::items)
        .unwrap_or_default()
    {
        let authz = authz.str().ok_or("bad authorization URL")?;
        s.authorize(authz, challenges)?;
    }
    let finalize = order
        .get("finalize")
        .and_then(Value::str)
        .ok_or("no finalize URL")?;
    let request = csr::request(&settings.names).map_err(str::to_string)?;
    let payload = format!(
        "{{\"csr\":\"{}\"}}",
        Base64UrlUnpadded::encode_string(&request.der)
    );
    s.post(finalize, Some(&payload))?;
    let done = s.poll(&order_url, "valid")?;
    let cert_url = done
        .get("certificate")
        .and_then(Value::str)
        .ok_or("no certificate URL")?;
    let chain = s.post(cert_url, None)?;
    if !chain.body.starts_with(b"-----BEGIN CERTIFICATE-----") {
        return Err("the CA's certificate is not PEM".into());
    }
    write_secret(&settings.dir.join("key.pem"), request.key_pem.as_bytes())?;
    write_secret(&settings.dir.join("cert.pem"), &chain.body)?;
    Ok(())
}

impl Session<'_> {
    fn fresh_nonce(&mut self) -> Result<(), String> {
        let r = self.client.request("HEAD", &self.new_nonce, None)?;
        self.nonce = r.header("Replay-Nonce").ok_or("no nonce")?.to_string();
        Ok(())
    }

    /// A signed POST (None: POST-as-GET); a bad nonce is retried once.
    fn post(
        &mut self,
        url: &str,
        payload: Option<&str>,
    ) -> Result<Response, String> {
        for _ in 0..2 {
            let signer = match &self.kid {
                Some(k) => Signer::Kid(k),
                None => Signer::Jwk,
            };
            let body = self
                .key
                .sign(signer, &self.nonce, url, payload)
                .map_err(str::to_string)?;
            let r = self.client.request("POST", url, Some(&body))?;
            if let Some(n) = r.header("Replay-Nonce") {
                self.nonce = n.to_string();
            }
            let bad_nonce = r.status == 400
                && String::from_utf8_lossy(&r.body).contains("badNonce");
            if bad_nonce {
                continue;
            }
            if r.status >= 400 {
                return Err(format!(
                    "{url}: {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                        .chars()
                        .take(300)
                        .collect::<String>()
                ));
            }
            return Ok(r);
        }
        Err(format!("{url}: the CA kept refusing our nonce"))
    }

    /// Answers one authorization's HTTP-01 challenge and waits for it.
    fn authorize(
        &mut self,
        url: &str,
        challenges: &Challenges,
    ) -> Result<(), String> {
        let authz = json_of(&self.post(url, None)?)?;
        if authz.get("status").and_then(Value::str) == Some("valid") {
            return Ok(());
        }
        let challenge = authz
            .get("challenges")
            .map(Value::items)
            .unwrap_or_default()
            .iter()
            .find(|c| c.get("type").and_then(Value::str) == Some("http-01"))
            .ok_or("no http-01 challenge offered")?;
        let token = challenge
            .get("token")
            .and_then(Value::str)
            .ok_or("no token")?;
        if !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("a token that is not base64url".into());
        }
        let answer = self.key.key_authorization(token);
        let published = self.publish(token, &answer, challenges)?;
        let result = self
            .post(
                challenge
                    .get("url")
                    .and_then(Value::str)
                    .ok_or("no challenge URL")?,
                Some("{}"),
            )
            .and_then(|_| self.poll(url, "valid").map(|_| ()));
        unpublish(token, published.as_deref(), challenges);
        result
    }

    fn publish(
        &self,
        token: &str,
        answer: &str,
        challenges: &Challenges,
    ) -> Result<Option<PathBuf>, String> {
        challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.to_string(), answer.to_string());
        let Some(root) = &self.settings.webroot else {
            return Ok(None);
        };
        let dir = root.join(".well-known/acme-challenge");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let file = dir.join(token);
        std::fs::write(&file, answer)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(Some(file))
    }

    /// Fetches `url` until its status is `want`; "invalid" ends it.
    fn poll(&mut self, url: &str, want: &str) -> Result<Value, String> {
        for attempt in 0..POLLS {
            let v = json_of(&self.post(url, None)?)?;
            match v.get("status").and_then(Value::str) {
                Some(s) if s == want => return Ok(v),
                Some("invalid") => {
                    let why = v
                        .get("challenges")
                        .map(Value::items)
                        .unwrap_or_default()
                        .iter()
                        .find_map(|c| {
                            c.get("error")?
                                .get("detail")?
                                .str()
                                .map(str::to_string)
                        })
                        .unwrap_or_else(|| "invalid".into());
                    return Err(format!("{url}: {why}"));
                }
                _ => std::thread::sleep(Duration::from_millis(
                    500 + 250 * u64::from(attempt.min(8)),
                )),
            }
        }
        Err(format!("{url}: still not {want}"))
    }
}

fn unpublish(token: &str, file: Option<&Path>, challenges: &Challenges) {
    challenges
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(token);
    if let Some(f) = file {
        let _ = std::fs::remove_file(f);
    }
}

fn json_of(r: &Response) -> Result<Value, String> {
    json::parse(&r.body).map_err(|e| format!("the CA's answer: {e}"))
}

/// The account key, made on first use (PKCS#8, 0600).
fn account_key(dir: &Path) -> Result<Vec<u8>, String> {
    let path = dir.join("account.key");
    if let Ok(k) = std::fs::read(&path) {
        return Ok(k);
    }
    let key = AccountKey::generate().map_err(str::to_string)?;
    write_secret(&path, &key)?;
    Ok(key)
}

/// Writes a file only its owner reads, durably and atomically.
fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().ok_or("no folder")?;
    crate::util::fs::create_dir_durable(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .and_then(|()| crate::util::fs::sync_dir(dir))
        .map_err(|e| format!("{}: {e}", path.display()))
}
