//! Certificates from an ACME CA (RFC 8555), kept fresh: a helper thread
//! gets one when there is none, renews it 30 days before it expires,
//! retries failures with backoff (a minute, doubling, at most a day),
//! and tells the loop, which loads it into every TLS listener at once
//! (open sessions keep theirs). What it last did is kept for `status`
//! and `doctor`.

pub mod client;
pub mod order;

use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use order::{Challenges, Settings};

/// Renew this long before expiry.
pub const RENEW_BEFORE: i64 = 30 * 86_400;
const FIRST_RETRY: u64 = 60;
const LONGEST_RETRY: u64 = 86_400;

/// The helper's side the loop keeps.
pub struct Acme {
    /// Tokens the web listener answers.
    pub challenges: Challenges,
    /// A line on what it last did, for `status`.
    pub state: Arc<Mutex<String>>,
    /// A new certificate is in place.
    pub renewed: Receiver<()>,
}

/// When the certificate in `settings.dir` expires, if there is one.
pub fn expiry(settings: &Settings) -> Option<i64> {
    crate::util::certs::expiry(&settings.dir.join("cert.pem"))
}

/// Starts the helper.
pub fn start(
    settings: Settings,
    waker: Arc<mio::Waker>,
) -> std::io::Result<Acme> {
    let challenges: Challenges = Arc::default();
    let state = Arc::new(Mutex::new("starting".to_string()));
    let (tx, renewed) = channel();
    let (c, st) = (Arc::clone(&challenges), Arc::clone(&state));
    std::thread::Builder::new()
        .name("acme".into())
        .spawn(move || {
            // For status (the lock) and doctor (the file).
            let state_file = settings.dir.join("state");
            let set = |line: String| {
                let _ = crate::util::fs::create_dir_durable(&settings.dir);
                let _ = std::fs::write(&state_file, format!("{line}\n"));
                *st.lock().unwrap_or_else(|p| p.into_inner()) = line;
            };
            let mut failures = 0u32;
            loop {
                let now = crate::util::date::now_secs();
                if let Some(until) = expiry(&settings)
                    && until - RENEW_BEFORE > now
                {
                    let wait = (until - RENEW_BEFORE - now) as u64;
                    set(format!(
                        "ok: certificate valid for {} more days",
                        (until - now) / 86_400
                    ));
                    std::thread::sleep(Duration::from_secs(wait.min(3600)));
                    continue;
                }
                match order::obtain(&settings, &c) {
                    Ok(()) => {
                        failures = 0;
                        // The state first: whoever reads the log line
                        // and asks status sees it.
                        set("ok: certificate obtained".into());
                        log::info!(
                            "acme: new certificate for {}",
                            settings.names.join(" ")
                        );
                        let _ = tx.send(());
                        let _ = waker.wake();
                    }
                    Err(e) => {
                        failures += 1;
                        let wait = (FIRST_RETRY << (failures - 1).min(16))
                            .min(LONGEST_RETRY);
                        // The CA's words end up in the log, the state
                        // file and XSTATUS's reply lines: escaped.
                        let e = crate::util::logsafe::Quoted(&e).to_string();
                        set(format!("failed: {e}; next try in {wait}s"));
                        log::warn!("acme: {e}; trying again in {wait}s");
                        std::thread::sleep(Duration::from_secs(wait));
                    }
                }
            }
        })?;
    Ok(Acme {
        challenges,
        state,
        renewed,
    })
}
