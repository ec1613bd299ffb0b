//! `postling check`, `--version`, `--help`, and config errors at start.

use std::process::Command;

use crate::util::{TempDir, binary, write_config};

#[test]
fn check_accepts_good_config() {
    let dir = TempDir::new();
    let conf = write_config(&dir.0, "");
    let out = Command::new(binary())
        .arg("check")
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
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
        let out = Command::new(binary())
            .arg(cmd)
            .arg("-c")
            .arg(&conf)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{conf_s}:9: expected a positive number")),
            "{err}"
        );
        assert!(
            err.contains(&format!("{conf_s}:10: unknown key frobnicate")),
            "{err}"
        );
    }
    // With the config fixed, the alias loop is reported against its file.
    let conf = write_config(&dir.0, "");
    std::fs::write(dir.0.join("aliases"), "loop@example.test: loop2@example.test\n\
                                           loop2@example.test: loop@example.test\n").unwrap();
    let out = Command::new(binary())
        .arg("check")
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
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
