//! The daily report (`daily_report = on`): the doctor's lines that
//! changed since the last report, the queue, the blocklists, and the
//! last day's figures, as a message for the postmaster. Run on a thread
//! of its own (the doctor waits on DNS and connections); what the last
//! report said is kept in `{data_dir}/report/doctor.lines`.

use std::path::Path;

use super::{Line, Options, Status};
use crate::config::Config;

/// What the loop hands the report: the last day's counts, by name.
pub type Counts = Vec<(&'static str, u64)>;

/// Runs the doctor, compares with the last report, and returns the
/// message to send (headers and all, LF line ends as every notice we
/// write) and the lines to keep.
pub fn make(cfg: &Config, counts: &Counts, now: i64) -> (Vec<u8>, String) {
    let lines = super::run(cfg, &Options::default());
    let rendered: Vec<String> = lines.iter().map(Line::render).collect();
    let kept_file = dir(cfg).join("doctor.lines");
    let before = std::fs::read_to_string(&kept_file).ok();
    let mut body = String::new();
    match &before {
        None => {
            body.push_str(
                "The first report: every check, as it stands now.\n\n",
            );
            for l in &rendered {
                body.push_str(&format!("  {l}\n"));
            }
        }
        Some(old) => {
            let old: Vec<&str> = old.lines().collect();
            let changed: Vec<&String> = rendered
                .iter()
                .filter(|l| !old.contains(&l.as_str()))
                .collect();
            let gone: Vec<&&str> = old
                .iter()
                .filter(|l| !rendered.iter().any(|r| r == **l))
                .collect();
            match changed.is_empty() && gone.is_empty() {
                true => {
                    body.push_str("No check changed since the last report.\n")
                }
                false => {
                    body.push_str("Changed since the last report:\n\n");
                    for l in &changed {
                        body.push_str(&format!("  now:  {l}\n"));
                    }
                    for l in &gone {
                        body.push_str(&format!("  was:  {l}\n"));
                    }
                }
            }
        }
    }
    let failing = lines.iter().filter(|l| l.status == Status::Fail).count();
    body.push_str(&format!(
        "\nChecks failing now: {failing} of {}.\n",
        lines.len()
    ));
    body.push_str("\nQueue and blocklists:\n\n");
    for l in lines
        .iter()
        .filter(|l| l.what == "queue" || l.what.starts_with("blocklist "))
    {
        body.push_str(&format!("  {}\n", l.render()));
    }
    body.push_str("\nThe last 24 hours:\n\n");
    for (name, n) in counts {
        body.push_str(&format!("  {:<16}{n:>8}\n", name.replace('_', " ")));
    }
    body.push_str(
        "\n-- \npostling doctor and postling status give these at any time.\n",
    );
    let message = message(cfg, &fit_lines(&body), now);
    (message, rendered.join("\n") + "\n")
}

/// The longest line the report's body carries, in bytes, before " [...]":
/// a mail's lines stop at 998 (RFC 5322 2.1.1), and a published record
/// (an 8192-bit DKIM key) can be longer. `postling doctor` shows it whole.
const LINE_MAX: usize = 990;

/// The body with every line over [`LINE_MAX`] cut.
fn fit_lines(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        let text = line.strip_suffix('\n').unwrap_or(line);
        match text.len() > LINE_MAX {
            true => {
                let mut end = LINE_MAX;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                out.push_str(&text[..end]);
                out.push_str(" [...]");
                out.push_str(&line[text.len()..]);
            }
            false => out.push_str(line),
        }
    }
    out
}

/// Keeps what this report said, for the next one to compare with.
pub fn keep(cfg: &Config, lines: &str) -> std::io::Result<()> {
    let dir = dir(cfg);
    crate::util::fs::create_dir_durable(&dir)?;
    crate::util::fs::atomic_write(&dir.join("doctor.lines"), lines.as_bytes())
}

/// Seconds since the last report, if there was one.
pub fn since_last(cfg: &Config) -> Option<u64> {
    let meta = std::fs::metadata(dir(cfg).join("doctor.lines")).ok()?;
    meta.modified().ok()?.elapsed().ok().map(|d| d.as_secs())
}

fn dir(cfg: &Config) -> std::path::PathBuf {
    Path::new(&cfg.data_dir).join("report")
}

/// Who gets it: the postmaster of our first domain (RFC 5321 4.5.1).
pub fn recipient(cfg: &Config) -> Option<String> {
    cfg.domains.first().map(|d| format!("postmaster@{d}"))
}

fn message(cfg: &Config, body: &str, now: i64) -> Vec<u8> {
    let host = &cfg.hostname;
    let to = recipient(cfg).unwrap_or_default();
    let date = crate::util::date::rfc5322(
        std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(now.max(0) as u64),
    );
    format!(
        "From: postling on {host} <MAILER-DAEMON@{host}>\nTo: <{to}>\n\
         Subject: Daily report for {host}\nDate: {date}\n\
         Message-ID: <report.{now}@{host}>\nAuto-Submitted: auto-generated\n\
         MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: 8bit\n\n{body}"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_fits_a_mail() {
        let long = format!(
            "  fail DKIM s._domainkey.example.org: {}\n",
            "ü".repeat(800)
        );
        let body = format!("first\n{long}last\n");
        let fitted = fit_lines(&body);
        assert!(fitted.lines().all(|l| l.len() <= 998), "{}", fitted.len());
        assert!(fitted.starts_with("first\n  fail DKIM"));
        assert!(fitted.ends_with(" [...]\nlast\n"));
        assert_eq!(fit_lines("a\nb"), "a\nb");
    }
}
