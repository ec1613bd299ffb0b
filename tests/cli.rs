//! `postling check`, `--version`, `--help`, and config errors at start.

use std::process::Command;

use crate::util::{TempDir, binary, write_config};

/// Runs `postling ARGS -c CONF` to the end.
fn postling(args: &[&str], conf: &std::path::Path) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .arg("-c")
        .arg(conf)
        .output()
        .unwrap()
}

#[test]
fn check_accepts_good_config() {
    let dir = TempDir::new();
    let conf = write_config(&dir.0, "");
    let out = postling(&["check"], &conf);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("ok (3 users, 2 domains)")
    );
}

#[test]
fn check_and_serve_report_every_problem_with_file_and_line() {
    let dir = TempDir::new();
    let conf = write_config(&dir.0, "smtp_timeout = soon\nfrobnicate = yes\n");
    std::fs::write(dir.0.join("aliases"), "loop@example.test: loop2@example.test\n\
                                           loop2@example.test: loop@example.test\n").unwrap();
    let conf_s = conf.display().to_string();
    for cmd in ["check", "serve"] {
        let out = postling(&[cmd], &conf);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{conf_s}:12: expected a positive number")),
            "{err}"
        );
        assert!(
            err.contains(&format!("{conf_s}:13: unknown key frobnicate")),
            "{err}"
        );
    }
    // With the config fixed, the alias loop is reported against its file.
    let conf = write_config(&dir.0, "");
    std::fs::write(dir.0.join("aliases"), "loop@example.test: loop2@example.test\n\
                                           loop2@example.test: loop@example.test\n").unwrap();
    let out = postling(&["check"], &conf);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let aliases = dir.0.join("aliases").display().to_string();
    assert!(err.contains(&format!("{aliases}:1: alias loop")), "{err}");
    assert!(err.contains(&format!("{aliases}:2: alias loop")), "{err}");
}

#[test]
fn missing_config_is_a_clear_error() {
    let out = Command::new(binary())
        .args(["check", "-c", "/nonexistent/p.conf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("/nonexistent/p.conf: cannot read")
    );
}

#[test]
fn version_and_help() {
    let out = Command::new(binary()).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("postling {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(binary()).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("serve"));
}

/// `--help` names every command, and each command has its own help,
/// reached as `COMMAND --help` and as `help COMMAND`.
#[test]
fn every_command_has_its_own_help() {
    let run = |args: &[&str]| {
        let out = Command::new(binary()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let general = run(&["--help"]);
    let commands = [
        "serve", "check", "user", "queue", "spam", "dkim", "sendmail",
    ];
    for c in commands {
        assert!(
            general.contains(&format!("\n  {c}")),
            "--help omits {c}:\n{general}"
        );
        let own = run(&[c, "--help"]);
        assert!(
            own.starts_with(&format!("usage: postling {c}")),
            "{c} --help: {own}"
        );
        assert_ne!(own, general);
        assert_eq!(run(&["help", c]), own);
    }
}

fn user_cmd(
    conf: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(binary())
        .arg("user")
        .args(args)
        .arg("-c")
        .arg(conf)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails early never reads it: a closed pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

#[test]
fn user_commands_edit_the_file_and_keep_the_rest() {
    let dir = TempDir::new();
    let conf = write_config(&dir.0, "");
    let users = dir.0.join("users");
    std::fs::write(dir.0.join("aliases"), "").unwrap();
    std::fs::write(&users, "# our users\nalice@example.test:{SHA512-CRYPT}$6$x$y:1000:1000::/home/alice::\n\n# end\n").unwrap();
    let out = user_cmd(&conf, &["add", "Dave@Example.test"], "s3cret\n");
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(text.starts_with("# our users\nalice@example.test:{SHA512-CRYPT}$6$x$y:1000:1000::/home/alice::\n\n# end\n"));
    let dave = text.lines().last().unwrap();
    assert!(
        dave.starts_with("dave@example.test:{ARGON2ID}$argon2id$v=19$"),
        "{dave}"
    );
    // The config check accepts what was written.
    let check = postling(&["check"], &conf);
    assert!(check.status.success(), "{check:?}");
    // passwd changes only the password field.
    assert!(
        user_cmd(&conf, &["passwd", "alice@example.test"], "new one\n")
            .status
            .success()
    );
    let text = std::fs::read_to_string(&users).unwrap();
    let alice = text.lines().nth(1).unwrap();
    assert!(
        alice.starts_with("alice@example.test:{ARGON2ID}$argon2id$")
            && alice.ends_with(":1000:1000::/home/alice::"),
        "{alice}"
    );
    let list = user_cmd(&conf, &["list"], "");
    assert_eq!(
        String::from_utf8_lossy(&list.stdout),
        "alice@example.test\ndave@example.test\n"
    );
    assert!(
        user_cmd(&conf, &["del", "alice@example.test"], "")
            .status
            .success()
    );
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(
        text.starts_with("# our users\n\n# end\ndave@example.test:"),
        "{text}"
    );
    // Mistakes are refused and change nothing.
    for (args, input) in [
        (&["add", "dave@example.test"][..], "x\n"),
        (&["add", "eve@elsewhere.test"][..], "x\n"),
        (&["add", "eve@example.test"][..], "\n"),
        (&["del", "nobody@example.test"][..], ""),
        (&["passwd", "nobody@example.test"][..], "x\n"),
    ] {
        let out = user_cmd(&conf, args, input);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(std::fs::read_to_string(&users).unwrap(), text);
    }
}

#[test]
fn check_names_the_config_line_of_a_missing_users_file() {
    let dir = TempDir::new();
    let conf = write_config(&dir.0, "");
    std::fs::remove_file(dir.0.join("users")).unwrap();
    let out = postling(&["check"], &conf);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    // write_config puts users_file on line 4.
    let named = format!("named by users_file at {}:4", conf.display());
    assert!(err.contains("cannot read") && err.contains(&named), "{err}");
}

#[test]
fn domains_must_be_domain_names() {
    let dir = TempDir::new();
    for bad in ["..", "example..test", "-x.test", "1.2.3.4", "a_b.test"] {
        let conf =
            write_config(&dir.0, &format!("domains = example.test {bad}\n"));
        let out = postling(&["check"], &conf);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("bad domain \"{bad}\"")), "{err}");
    }
}

#[test]
fn check_warns_about_an_open_relay_network() {
    let dir = TempDir::new();
    for net in ["0.0.0.0/0", "::/0"] {
        let conf = write_config(
            &dir.0,
            &format!("trusted_networks = 127.0.0.1 {net}\n"),
        );
        let out = postling(&["check"], &conf);
        assert!(out.status.success(), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("warning:") && err.contains("may relay"),
            "{err}"
        );
    }
    let conf = write_config(&dir.0, "trusted_networks = 127.0.0.0/8\n");
    let out = postling(&["check"], &conf);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
}

#[test]
fn user_names_the_users_file_would_misread_are_refused() {
    let dir = TempDir::new();
    let conf = write_config(&dir.0, "");
    let before = std::fs::read(dir.0.join("users")).unwrap();
    for bad in [
        "#x@example.test",
        "a\tb@example.test",
        "a\u{1}b@example.test",
    ] {
        let out = Command::new(binary())
            .args(["user", "add", bad, "-c"])
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad}");
    }
    assert_eq!(std::fs::read(dir.0.join("users")).unwrap(), before);
}

#[test]
fn serve_as_root_needs_run_as() {
    if !rustix_is_root() {
        return;
    }
    let dir = TempDir::new();
    let conf = write_config(&dir.0, "run_as =\n");
    let out = postling(&["serve"], &conf);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to serve as root"), "{err}");
    assert!(err.contains("run_as"), "{err}");
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")
        })
}
