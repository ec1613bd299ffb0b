//! ManageSieve's script work, on a helper thread: each command's
//! effect on the user's scripts and the answer the client gets (RFC
//! 5804 §2), with the limits on size and count.

use std::path::Path;

use super::scripts::{self, MAX_SCRIPTS, MAX_SIZE};
use crate::proto::managesieve::ScriptOp;
use crate::proto::managesieve::session::reply;
use crate::proto::sieve::compile;

/// Does `op` for the user whose mailbox is `root`; the answer.
pub fn perform(root: &Path, op: &ScriptOp) -> Vec<u8> {
    let mut out = Vec::new();
    let result = match op {
        ScriptOp::HaveSpace { name, size } => named(name)
            .and_then(|()| room(root, name, *size))
            .map(|()| "Putscript would succeed".into()),
        ScriptOp::Put { name, text } => put(root, name, text),
        ScriptOp::Check { text } => {
            checked(text).map(|()| "Script is valid".into())
        }
        ScriptOp::List => {
            list(root, &mut out).map(|()| "Listscripts completed".into())
        }
        ScriptOp::SetActive { name } => set_active(root, name),
        ScriptOp::Get { name } => get(root, name, &mut out),
        ScriptOp::Delete { name } => delete(root, name),
        ScriptOp::Rename { from, to } => rename(root, from, to),
    };
    match result {
        Ok(text) => reply(&mut out, "OK", None, &text),
        Err((code, text)) => {
            out.clear();
            reply(&mut out, "NO", code, &text);
        }
    }
    out
}

type Answer<T> = Result<T, (Option<&'static str>, String)>;

fn io(e: std::io::Error) -> (Option<&'static str>, String) {
    log::warn!("managesieve: {e}");
    (Some("TRYLATER"), "Could not be done now".into())
}

fn named(name: &str) -> Answer<()> {
    match scripts::valid_name(name) {
        true => Ok(()),
        false => Err((None, "Bad script name".into())),
    }
}

fn exists(root: &Path, name: &str) -> Answer<bool> {
    Ok(scripts::list(root)
        .map_err(io)?
        .iter()
        .any(|(n, _)| n == name))
}

/// Whether a script of `size` octets named `name` fits.
fn room(root: &Path, name: &str, size: u64) -> Answer<()> {
    if size > MAX_SIZE {
        return Err((
            Some("QUOTA/MAXSIZE"),
            format!("Scripts are at most {MAX_SIZE} octets"),
        ));
    }
    let all = scripts::list(root).map_err(io)?;
    if !all.iter().any(|(n, _)| n == name) && all.len() >= MAX_SCRIPTS {
        return Err((
            Some("QUOTA/MAXSCRIPTS"),
            format!("At most {MAX_SCRIPTS} scripts"),
        ));
    }
    Ok(())
}

/// A script's text compiles; else the line and the reason.
fn checked(text: &[u8]) -> Answer<()> {
    let text = std::str::from_utf8(text)
        .map_err(|_| (None, "Script is not UTF-8".to_string()))?;
    compile::compile(text)
        .map(|_| ())
        .map_err(|e| (None, format!("line {}: {}", e.line, e.what)))
}

fn put(root: &Path, name: &str, text: &[u8]) -> Answer<String> {
    named(name)?;
    room(root, name, text.len() as u64)?;
    checked(text)?;
    let text = String::from_utf8_lossy(text);
    scripts::put(root, name, &text).map_err(io)?;
    Ok("Putscript completed".into())
}

fn list(root: &Path, out: &mut Vec<u8>) -> Answer<()> {
    for (name, active) in scripts::list(root).map_err(io)? {
        let q = name.replace('\\', "\\\\").replace('"', "\\\"");
        let tail = if active { " ACTIVE" } else { "" };
        out.extend_from_slice(format!("\"{q}\"{tail}\r\n").as_bytes());
    }
    Ok(())
}

fn nonexistent() -> (Option<&'static str>, String) {
    (
        Some("NONEXISTENT"),
        "There is no script by that name".into(),
    )
}

fn set_active(root: &Path, name: &str) -> Answer<String> {
    if name.is_empty() {
        scripts::set_active(root, None).map_err(io)?;
        return Ok("No script is active".into());
    }
    if !exists(root, name)? {
        return Err(nonexistent());
    }
    scripts::set_active(root, Some(name)).map_err(io)?;
    Ok("Setactive completed".into())
}

fn get(root: &Path, name: &str, out: &mut Vec<u8>) -> Answer<String> {
    if !exists(root, name)? {
        return Err(nonexistent());
    }
    let text = scripts::get(root, name).map_err(io)?;
    out.extend_from_slice(format!("{{{}}}\r\n", text.len()).as_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
    Ok("Getscript completed".into())
}

fn delete(root: &Path, name: &str) -> Answer<String> {
    if !exists(root, name)? {
        return Err(nonexistent());
    }
    if scripts::active(root).as_deref() == Some(name) {
        return Err((
            Some("ACTIVE"),
            "The active script cannot be deleted".into(),
        ));
    }
    scripts::delete(root, name).map_err(io)?;
    Ok("Deletescript completed".into())
}

fn rename(root: &Path, from: &str, to: &str) -> Answer<String> {
    named(to)?;
    if !exists(root, from)? {
        return Err(nonexistent());
    }
    if exists(root, to)? {
        return Err((
            Some("ALREADYEXISTS"),
            "A script by that name exists".into(),
        ));
    }
    scripts::rename(root, from, to).map_err(io)?;
    Ok("Renamescript completed".into())
}
