//! The loop's side of the daily report: a timer starts it on a thread
//! of its own (the doctor waits on DNS and connections, never the
//! loop), the message comes back through the waker, and goes to the
//! postmaster as our notices do. The first report goes out soon after
//! the first start; then one a day (a restart keeps the rhythm).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use log::{info, warn};

use crate::doctor::report;
use crate::server::Server;
use crate::server::base::stats::Event;
use crate::server::base::timer::{NOBODY, Timer};

const DAY: u64 = 86_400;
/// The first report waits this long after start (the listeners are up).
const FIRST_DELAY: Duration = Duration::from_secs(5);

/// Reports under way and their way back.
pub struct Reports {
    done: Receiver<Vec<u8>>,
    send: Sender<Vec<u8>>,
    waker: Arc<mio::Waker>,
}

impl Reports {
    pub fn new(waker: Arc<mio::Waker>) -> Reports {
        let (send, done) = channel();
        Reports { done, send, waker }
    }
}

impl Server {
    /// Arms the first report's timer, if reports are on.
    pub(in crate::server) fn schedule_report(&mut self) {
        let cfg = &self.services.config;
        if !cfg.daily_report {
            return;
        }
        let wait = match report::since_last(cfg) {
            Some(age) if age < DAY => Duration::from_secs(DAY - age),
            _ => FIRST_DELAY,
        };
        self.core.timers.add(
            Instant::now() + wait,
            Timer::DailyReport,
            NOBODY,
        );
    }

    /// Time for a report: it is made on a thread; the next is a day on.
    pub(in crate::server) fn report_due(&mut self) {
        let now = Instant::now();
        self.core.timers.add(
            now + Duration::from_secs(DAY),
            Timer::DailyReport,
            NOBODY,
        );
        let counts: report::Counts = Event::ALL
            .iter()
            .map(|&e| (e.name(), self.services.stats.figures(e, now).2))
            .collect();
        let mut cfg = crate::config::Config::clone(&self.services.config);
        // The listeners as bound (a configured port 0 has its own now),
        // for the open-relay self-test.
        let smtp: Vec<std::net::SocketAddr> = self
            .core
            .listeners
            .iter()
            .filter(|l| {
                l.service == crate::server::base::services::Service::Smtp
            })
            .filter_map(|l| l.socket.local_addr().ok())
            .collect();
        if !smtp.is_empty() {
            cfg.listen_smtp = smtp;
        }
        let send = self.reports.send.clone();
        let waker = Arc::clone(&self.reports.waker);
        let spawned = std::thread::Builder::new().name("report".into()).spawn(
            move || {
                let made = crate::util::contain::guarded(
                    || "daily report".to_string(),
                    || {
                        report::make(
                            &cfg,
                            &counts,
                            crate::util::date::now_secs(),
                        )
                    },
                );
                if let Some((message, lines)) = made {
                    if let Err(e) = report::keep(&cfg, &lines) {
                        log::warn!("daily report: keeping its lines: {e}");
                    }
                    let _ = send.send(message);
                    let _ = waker.wake();
                }
            },
        );
        if let Err(e) = spawned {
            warn!("daily report: {e}");
        }
    }

    /// Reports made: each goes to the postmaster.
    pub(in crate::server) fn finish_reports(&mut self) {
        let made: Vec<Vec<u8>> = self.reports.done.try_iter().collect();
        let Some(to) = report::recipient(&self.services.config) else {
            return;
        };
        for message in made {
            info!("daily report to {to}");
            self.send_notice(&to, message);
        }
    }
}
