//! Greylisting's state from the loop's side: loaded from
//! `{data_dir}/greylist` at start, written out by a durability helper
//! when it has changed (looked at with the folder check, every 2 s), and
//! once more at shutdown. A crash loses at most the last seconds'
//! changes: a client then waits through the delay once more, and no
//! mail is lost (a 451 asks it to retry).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{error, info};

use crate::config::Config;
use crate::inbound::greylist::Greylist;
use crate::server::Server;
use crate::server::base::timer::NOBODY;
use crate::server::base::writer::Task;

const LOG_TARGET: &str = "postling::server::greylist";

/// Where the greylist is kept.
pub fn file(data_dir: &Path) -> PathBuf {
    data_dir.join("greylist")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The greylist `config` asks for, with what was kept; keyed by
/// `secret` (kept across restarts, so the kept hashes still match).
pub fn open(config: &Config, secret: &[u8]) -> Option<Greylist> {
    if !config.spam.greylist {
        return None;
    }
    let word = |at: usize| {
        let mut b = [0u8; 8];
        for (i, x) in secret.iter().skip(at).take(8).enumerate() {
            b[i] = *x;
        }
        u64::from_le_bytes(b)
    };
    let mut g = Greylist::new(config.spam.greylist_delay, (word(0), word(8)));
    match std::fs::read(file(&config.data_dir)) {
        Ok(bytes) => {
            g.load(&bytes, unix_now());
            info!(target: LOG_TARGET, "greylist loaded");
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => error!(target: LOG_TARGET, "greylist not loaded: {e}"),
    }
    Some(g)
}

impl Server {
    /// A changed greylist goes to a durability helper to be written.
    pub(in crate::server) fn save_greylist(&mut self) {
        let path = file(&self.services.config.data_dir);
        let Some(g) = self.services.greylist.as_mut().filter(|g| g.dirty)
        else {
            return;
        };
        g.dirty = false;
        let bytes = g.to_bytes();
        self.core.writer.send((Task::Save { path, bytes }, NOBODY));
    }

    /// The organizational domain of `domain` (the checks' Public Suffix
    /// List; the last two labels without it).
    fn org_domain(&self, domain: &str) -> String {
        match &self.smtp.checking {
            Some(c) => c.psl.organizational(domain),
            None => crate::proto::dmarc::psl::List::parse("")
                .organizational(domain),
        }
    }

    /// A new transaction from a stranger whose MAIL FROM domain passed
    /// DMARC here before: its RCPTs wait for SPF, which may spare it
    /// greylisting.
    pub(in crate::server) fn greylist_vouch(
        &mut self,
        slot: usize,
        id: &str,
        domain: &str,
    ) {
        let org = self.org_domain(domain);
        let vouches = self
            .services
            .greylist
            .as_ref()
            .is_some_and(|g| g.vouches(&org, unix_now()));
        if let (true, Some(conn)) = (vouches, self.core.conn_mut(slot))
            && let Some(s) = conn.session.as_smtp()
        {
            s.smtp.expect_vouch(id);
        }
    }

    /// A message's From domain passed DMARC: kept, so that its SPF
    /// passes spare later mail greylisting.
    pub(in crate::server) fn greylist_dmarc_passed(&mut self, domain: &str) {
        let org = self.org_domain(domain);
        if let Some(g) = self.services.greylist.as_mut() {
            g.dmarc_passed(&org, unix_now());
        }
    }

    /// At shutdown: written here, the helpers being stopped.
    pub(in crate::server) fn save_greylist_now(&mut self) {
        let path = file(&self.services.config.data_dir);
        if let Some(g) = self.services.greylist.as_mut().filter(|g| g.dirty)
            && let Err(e) = crate::util::fs::atomic_write(&path, &g.to_bytes())
        {
            error!(target: LOG_TARGET, "greylist not saved: {e}");
        }
    }
}
