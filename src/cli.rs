//! Command-line arguments, by hand: `serve`, `check`, `--version`,
//! `--help`, each command taking `-c FILE`.

use std::path::PathBuf;

use crate::admin::UserAction;
use crate::config::DEFAULT_PATH;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the server in the foreground.
    Serve {
        /// The config file.
        config: PathBuf,
    },
    /// Check the config, users and aliases files, then exit.
    Check {
        /// The config file.
        config: PathBuf,
    },
    /// Manage the users file.
    User {
        /// The config file (it names the users file).
        config: PathBuf,
        /// What to do.
        action: UserAction,
    },
    /// Look at or change the outbound queue.
    Queue {
        /// The config file (it names data_dir).
        config: PathBuf,
        /// What to do.
        action: QueueAction,
    },
    /// Teach a user's spam filter, or ask it.
    Spam {
        /// The config file (it names data_dir).
        config: PathBuf,
        /// What to do.
        action: SpamAction,
    },
    /// Check the DNS, certificate and host around the server.
    Doctor {
        /// The config file.
        config: PathBuf,
        /// What to check.
        options: crate::doctor::Options,
    },
    /// The running server's figures.
    Status {
        /// The config file (it names the local socket).
        config: PathBuf,
        /// As JSON.
        json: bool,
    },
    /// Make a DKIM key and print its DNS record.
    DkimKeygen {
        /// The signing domain.
        domain: String,
        /// The selector.
        selector: String,
        /// Ed25519 (else RSA 2048).
        ed25519: bool,
        /// Where to write the key (PEM, 0600; never over a file).
        out: PathBuf,
    },
    /// Print the version.
    Version,
    /// Print usage.
    Help,
    /// Print one command's usage.
    HelpFor(&'static str),
}

/// `postling queue ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueAction {
    /// Each message: id, age, sender, each recipient's state.
    List,
    /// Remove a message from the queue.
    Delete(String),
    /// Ask the running server to try every message now.
    Flush,
}

/// `postling spam ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpamAction {
    /// Learn from Maildir folders, mbox files or folders of messages.
    Train {
        /// The user (an address with a mailbox here).
        user: String,
        /// Where spam is.
        spam: Vec<PathBuf>,
        /// Where ham is.
        ham: Vec<PathBuf>,
    },
    /// Score each message found at the paths, one line each.
    Score {
        /// The user.
        user: String,
        /// Messages: files, Maildir folders, mbox files.
        paths: Vec<PathBuf>,
    },
}

/// The usage text for `--help`.
pub const USAGE: &str = "\
usage: postling <command> [-c FILE]

commands:
  serve      run the mail server in the foreground (logs to stderr;
             RUST_LOG=debug for more)
  check      check the config, users and aliases files; print every
             problem as FILE:LINE: message and exit 1 if there are any
  user add ADDRESS      add a user; the password is read from standard
                        input, or asked for twice on a terminal
  user passwd ADDRESS   change a user's password
  user del ADDRESS      remove a user
  user list             list the users
  queue list            the outbound queue: each message's id, age and
                        sender, and each recipient's state and last reply
  queue flush           the running server tries every queued message now
  queue delete ID       remove a message from the queue
  spam train USER [--spam PATH]... [--ham PATH]...
                        teach USER's filter from Maildir folders, mbox
                        files or folders of message files
  spam score USER PATH...
                        the filter's score of each message at PATH
                        (spam, ham, unsure, or abstain while untrained)
  dkim keygen DOMAIN SELECTOR [--ed25519] -o FILE
                        write a DKIM key (RSA 2048 through openssl, or
                        Ed25519) and print the TXT record to publish
  doctor [--port25-to DOMAIN] [DOMAIN...]
                        check DNS (MX, A/AAAA, PTR, SPF, DKIM, DMARC,
                        MTA-STS, SRV), the certificate, blocklists,
                        port 25, open relay, queue, disk, permissions
  status [--json]       the running server's figures: uptime, memory,
                        connections, messages in the last hour and day,
                        the queue, lockouts, helper queues, certificate
  sendmail [-t] [-i] [-f SENDER] [-F NAME] [RECIPIENT...]
                        send the message on standard input through the
                        running server (also as a link named sendmail)

options:
  -c FILE    the config file (default /etc/postling/postling.conf)
  --version  print the version
  --help     print this help; COMMAND --help (or help COMMAND) prints
             that command's own
";

/// Each command's own `--help`.
const COMMAND_HELP: &[(&str, &str)] = &[
    (
        "serve",
        "\
usage: postling serve [-c FILE]

Runs the mail server in the foreground: every listener the config names,
delivery, the outbound queue. Logs go to standard error (RUST_LOG=debug
for more). SIGHUP reloads users, aliases and certificates; SIGTERM stops
after the sessions in progress end.
",
    ),
    (
        "check",
        "\
usage: postling check [-c FILE]

Reads the config, users and aliases files and the certificate, prints
every problem as FILE:LINE: message, and exits 1 if there is any (0 and
a summary line if not). Warnings (such as a sieve_before that does not
compile) are printed but do not fail.
",
    ),
    (
        "user",
        "\
usage: postling user add ADDRESS
       postling user passwd ADDRESS
       postling user del ADDRESS
       postling user list          [-c FILE]

Edits the users file the config names, keeping its other lines. add and
passwd read the password from standard input, or ask twice on a
terminal. Send the server SIGHUP afterwards.
",
    ),
    (
        "queue",
        "\
usage: postling queue list
       postling queue flush
       postling queue delete ID    [-c FILE]

list: each queued message's id, age and sender, and each recipient's
state and last reply. flush: the running server tries every message now.
delete: removes a message (no bounce is sent).
",
    ),
    (
        "spam",
        "\
usage: postling spam train USER [--spam PATH]... [--ham PATH]...
       postling spam score USER PATH...     [-c FILE]

train: teaches USER's filter from Maildir folders, mbox files or folders
of message files. score: the filter's verdict on each message at PATH
(spam, ham, unsure, or abstain while it has learnt too little).
",
    ),
    (
        "dkim",
        "\
usage: postling dkim keygen DOMAIN SELECTOR [--ed25519] -o FILE

Writes a new DKIM signing key to FILE (0600, never over a file): RSA 2048
through openssl, or Ed25519; prints the TXT record to publish at
SELECTOR._domainkey.DOMAIN.
",
    ),
    ("sendmail", SENDMAIL_HELP),
];

/// `sendmail --help`, also reached as `postling sendmail --help`.
pub const SENDMAIL_HELP: &str = "\
usage: postling sendmail [-c FILE] [-t] [-i] [-f SENDER] [-F NAME] [RECIPIENT...]
       sendmail ...                 (a link named sendmail)

Sends the message on standard input through the running server's local
socket, as a submission from this host. -t takes the recipients from the
To, Cc and Bcc fields (Bcc is removed); -i (or -oi) does not end the
message at a line holding a single dot; -f sets the envelope sender (root
and the server's own user only); -F the sender's full name. The config
comes from -c, else $POSTLING_CONFIG, else the default path. Exit codes
are sysexits.h's.
";

/// The help text of `command`, if it is one.
pub fn command_help(command: &str) -> Option<&'static str> {
    COMMAND_HELP
        .iter()
        .find(|(name, _)| *name == command)
        .map(|(_, text)| *text)
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(
    args: I,
) -> Result<Command, String> {
    let mut args = args.into_iter();
    let mut command = None;
    let mut config = None;
    let mut words: Vec<String> = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--version" | "-V" => return Ok(Command::Version),
            "--help" | "-h" => {
                return Ok(help_for(command.as_deref()));
            }
            "help" if command.is_none() => {
                return Ok(help_for(args.next().as_deref()));
            }
            "-c" | "--config" => {
                let file = args.next().ok_or("-c needs a file")?;
                config = Some(PathBuf::from(file));
            }
            "serve" | "check" | "user" | "queue" | "dkim" | "spam"
            | "status" | "doctor"
                if command.is_none() =>
            {
                command = Some(arg)
            }
            _ if matches!(
                command.as_deref(),
                Some("user" | "queue" | "dkim" | "spam" | "status" | "doctor")
            ) =>
            {
                words.push(arg)
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let config = config.unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
    match command.as_deref() {
        Some("serve") => Ok(Command::Serve { config }),
        Some("check") => Ok(Command::Check { config }),
        Some("user") => {
            let action =
                match words.iter().map(String::as_str).collect::<Vec<_>>()[..]
                {
                    ["add", a] => UserAction::Add(a.to_string()),
                    ["passwd", a] => UserAction::Passwd(a.to_string()),
                    ["del", a] => UserAction::Del(a.to_string()),
                    ["list"] => UserAction::List,
                    _ => {
                        return Err(
                            "usage: user add|passwd|del ADDRESS, or user list"
                                .into(),
                        );
                    }
                };
            Ok(Command::User { config, action })
        }
        Some("queue") => {
            let action =
                match words.iter().map(String::as_str).collect::<Vec<_>>()[..]
                {
                    ["list"] => QueueAction::List,
                    ["delete", id] => QueueAction::Delete(id.to_string()),
                    ["flush"] => QueueAction::Flush,
                    _ => {
                        return Err(
                        "usage: queue list, queue flush, or queue delete ID"
                            .into(),
                    );
                    }
                };
            Ok(Command::Queue { config, action })
        }
        Some("dkim") => dkim(&words),
        Some("doctor") => {
            doctor(&words).map(|options| Command::Doctor { config, options })
        }
        Some("status") => match words.as_slice() {
            [] => Ok(Command::Status {
                config,
                json: false,
            }),
            [flag] if flag == "--json" => {
                Ok(Command::Status { config, json: true })
            }
            _ => Err("usage: status [--json]".into()),
        },
        Some("spam") => {
            spam(&words).map(|action| Command::Spam { config, action })
        }
        _ => Err("no command given".into()),
    }
}

/// The help for `command`, or the general one.
fn help_for(command: Option<&str>) -> Command {
    match command.and_then(|c| {
        COMMAND_HELP
            .iter()
            .find(|(name, _)| *name == c)
            .map(|(n, _)| *n)
    }) {
        Some(name) => Command::HelpFor(name),
        None => Command::Help,
    }
}

/// `doctor [--port25-to DOMAIN[:PORT]] [DOMAIN...]`.
fn doctor(words: &[String]) -> Result<crate::doctor::Options, String> {
    let mut options = crate::doctor::Options::default();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "--port25-to" => {
                let target = it
                    .next()
                    .ok_or("usage: doctor [--port25-to DOMAIN] [DOMAIN...]")?;
                options.port25_to = Some(target.clone());
            }
            d if d.starts_with('-') => {
                return Err(format!("unknown option {d}"));
            }
            d => options.domains.push(d.to_string()),
        }
    }
    Ok(options)
}

/// `dkim keygen DOMAIN SELECTOR [--ed25519] -o FILE`, flags anywhere.
fn dkim(words: &[String]) -> Result<Command, String> {
    let usage = || {
        "usage: dkim keygen DOMAIN SELECTOR [--ed25519] -o FILE".to_string()
    };
    let mut plain = Vec::new();
    let mut ed25519 = false;
    let mut out = None;
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "--ed25519" => ed25519 = true,
            "-o" => out = Some(PathBuf::from(it.next().ok_or_else(usage)?)),
            _ => plain.push(w.as_str()),
        }
    }
    match (plain.as_slice(), out) {
        (["keygen", domain, selector], Some(out)) => Ok(Command::DkimKeygen {
            domain: domain.to_ascii_lowercase(),
            selector: selector.to_string(),
            ed25519,
            out,
        }),
        _ => Err(usage()),
    }
}

/// `spam train USER --spam PATH --ham PATH`, `spam score USER PATH...`.
fn spam(words: &[String]) -> Result<SpamAction, String> {
    let usage = || {
        "usage: spam train USER [--spam PATH]... [--ham PATH]..., or spam score USER PATH..."
            .to_string()
    };
    match words {
        [verb, user, rest @ ..] if verb == "train" => {
            let (mut spam, mut ham) = (Vec::new(), Vec::new());
            let mut it = rest.iter();
            while let Some(flag) = it.next() {
                let path = PathBuf::from(it.next().ok_or_else(usage)?);
                match flag.as_str() {
                    "--spam" => spam.push(path),
                    "--ham" => ham.push(path),
                    _ => return Err(usage()),
                }
            }
            if spam.is_empty() && ham.is_empty() {
                return Err(usage());
            }
            Ok(SpamAction::Train {
                user: user.clone(),
                spam,
                ham,
            })
        }
        [verb, user, paths @ ..] if verb == "score" && !paths.is_empty() => {
            Ok(SpamAction::Score {
                user: user.clone(),
                paths: paths.iter().map(PathBuf::from).collect(),
            })
        }
        _ => Err(usage()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn forms() {
        assert_eq!(
            p(&["serve", "-c", "x.conf"]),
            Ok(Command::Serve {
                config: "x.conf".into()
            })
        );
        assert_eq!(
            p(&["check"]),
            Ok(Command::Check {
                config: DEFAULT_PATH.into()
            })
        );
        assert_eq!(p(&["--version"]), Ok(Command::Version));
        assert!(p(&[]).is_err());
        assert!(p(&["serve", "-c"]).is_err());
        assert!(p(&["serve", "check"]).is_err());
        assert_eq!(
            p(&["user", "add", "a@b.test", "-c", "x"]),
            Ok(Command::User {
                config: "x".into(),
                action: UserAction::Add("a@b.test".into())
            })
        );
        assert!(p(&["user", "add"]).is_err());
        assert_eq!(
            p(&["queue", "list", "-c", "x"]),
            Ok(Command::Queue {
                config: PathBuf::from("x"),
                action: QueueAction::List
            })
        );
        assert!(matches!(
            p(&["queue", "delete", "ID7"]),
            Ok(Command::Queue { action: QueueAction::Delete(id), .. }) if id == "ID7"
        ));
        assert!(p(&["queue", "flush", "now"]).is_err());
        assert_eq!(
            p(&[
                "spam", "train", "u@x", "--spam", "J", "--ham", "H", "--ham",
                "I"
            ]),
            Ok(Command::Spam {
                config: DEFAULT_PATH.into(),
                action: SpamAction::Train {
                    user: "u@x".into(),
                    spam: vec!["J".into()],
                    ham: vec!["H".into(), "I".into()],
                }
            })
        );
        assert!(p(&["spam", "train", "u@x"]).is_err());
        assert!(p(&["spam", "train", "u@x", "--spam"]).is_err());
        assert!(p(&["spam", "train", "u@x", "--junk", "J"]).is_err());
        assert!(matches!(
            p(&["spam", "score", "u@x", "a", "b"]),
            Ok(Command::Spam { action: SpamAction::Score { paths, .. }, .. }) if paths.len() == 2
        ));
        assert!(p(&["spam", "score", "u@x"]).is_err());
        assert!(matches!(
            p(&["queue", "flush"]),
            Ok(Command::Queue {
                action: QueueAction::Flush,
                ..
            })
        ));
        assert!(p(&["user", "frob", "x"]).is_err());
    }
}
