//! Command-line arguments, by hand: `serve`, `check`, `--version`,
//! `--help`, each command taking `-c FILE`.

use std::path::PathBuf;

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
    /// Print the version.
    Version,
    /// Print usage.
    Help,
}

/// The usage text for `--help`.
pub const USAGE: &str = "\
usage: postling <command> [-c FILE]

commands:
  serve      run the mail server in the foreground (logs to stderr;
             RUST_LOG=debug for more)
  check      check the config, users and aliases files; print every
             problem as FILE:LINE: message and exit 1 if there are any

options:
  -c FILE    the config file (default /etc/postling/postling.conf)
  --version  print the version
  --help     print this help
";

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(
    args: I,
) -> Result<Command, String> {
    let mut args = args.into_iter();
    let mut command = None;
    let mut config = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--version" | "-V" => return Ok(Command::Version),
            "--help" | "-h" | "help" => return Ok(Command::Help),
            "-c" | "--config" => {
                let file = args.next().ok_or("-c needs a file")?;
                config = Some(PathBuf::from(file));
            }
            "serve" | "check" if command.is_none() => command = Some(arg),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let config = config.unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
    match command.as_deref() {
        Some("serve") => Ok(Command::Serve { config }),
        Some("check") => Ok(Command::Check { config }),
        _ => Err("no command given".into()),
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
    }
}
