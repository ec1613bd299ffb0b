//! The shipped configs are valid, and every key they use is documented in
//! the README's configuration reference.

use std::path::Path;
use std::process::Command;

use crate::util::binary;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_key_in_the_example_config_is_documented() {
    let conf =
        std::fs::read_to_string(root().join("conf/postling.conf")).unwrap();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    // Keys set, and keys shown commented out (`#tls_cert = ...`).
    let keys: Vec<&str> = conf
        .lines()
        .map(|l| l.strip_prefix('#').unwrap_or(l))
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
        .filter(|k| {
            !k.is_empty()
                && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
        .collect();
    assert!(keys.len() >= 21, "{keys:?}");
    for key in keys {
        assert!(
            readme.contains(&format!("| `{key}` |")),
            "{key} is not in README"
        );
    }
}

#[test]
fn shipped_configs_pass_check() {
    for conf in ["conf/postling.conf", "conf/dev.conf"] {
        let out = Command::new(binary())
            .arg("check")
            .arg("-c")
            .arg(root().join(conf))
            .output()
            .unwrap();
        assert!(out.status.success(), "{conf}: {out:?}");
    }
}
