//! [`Services`]: the local knowledge sessions ask for through
//! [`proto::smtp::Host`](crate::proto::smtp::Host). A separate struct
//! from the connections, so the loop can lend both at once.

use std::rc::Rc;

use crate::config::{Config, Directory};
use crate::proto::smtp::server::RcptError;
use crate::proto::smtp::{Host, Path, Settings};
use crate::util::id;

/// Config, users and aliases, shared by every session.
pub struct Services {
    /// The configuration as loaded at start.
    pub config: Rc<Config>,
    /// Users and aliases; replaced on SIGHUP.
    pub directory: Directory,
    /// What SMTP sessions need of the config.
    pub smtp: Rc<Settings>,
}

impl Services {
    /// Services for `config`, with its users and aliases loaded.
    pub fn new(config: Config, directory: Directory) -> Services {
        let smtp = Rc::new(Settings {
            hostname: config.hostname.clone(),
            max_message_size: config.max_message_size,
            max_recipients: config.max_recipients,
        });
        Services {
            config: Rc::new(config),
            directory,
            smtp,
        }
    }

    /// Re-reads users and aliases; on any problem keeps the old ones.
    pub fn reload(&mut self) {
        match self.config.directory() {
            Ok(d) => {
                log::info!("reloaded: {} users", d.users.len());
                self.directory = d;
            }
            Err(problems) => {
                log::error!("reload failed, keeping old users and aliases:");
                for p in problems.0 {
                    log::error!("{p}");
                }
            }
        }
    }
}

impl Host for Services {
    fn resolve(&mut self, to: &Path) -> Result<Vec<String>, RcptError> {
        self.directory.resolve(to)
    }

    fn queue_id(&mut self) -> String {
        id::queue_id()
    }
}
