//! Writing LIST, LSUB and STATUS answers.

use super::names;
use super::response::{line, mailbox};
use super::types::{Enabled, ListParams, Listed, Status, StatusItem};

/// `* LIST (attributes) "." name` for each folder, with LIST-STATUS.
pub fn write(
    out: &mut Vec<u8>,
    list: &[Listed],
    lsub: bool,
    params: &ListParams,
    enabled: Enabled,
) {
    let kind = if lsub { "LSUB" } else { "LIST" };
    for l in list {
        let name = names::encode(&l.name, enabled.utf8);
        out.extend_from_slice(
            format!("* {kind} ({}) \".\" ", l.attributes.join(" ")).as_bytes(),
        );
        mailbox(out, &name);
        if l.childinfo {
            out.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
        }
        out.extend_from_slice(b"\r\n");
        if let (Some(items), Some(st)) = (&params.ret_status, &l.status) {
            write_status(out, &l.name, st, items, enabled);
        }
    }
}

/// `* STATUS name (items)`.
/// GETQUOTAROOT's QUOTAROOT line (with its mailbox) and the QUOTA of
/// the one root, `""`: STORAGE in KiB (RFC 9208). No limit: no root.
pub fn write_quota(
    out: &mut Vec<u8>,
    mailbox: Option<&str>,
    used: u64,
    limit: u64,
    enabled: Enabled,
) {
    if let Some(name) = mailbox {
        out.extend_from_slice(b"* QUOTAROOT ");
        self::mailbox(out, &names::encode(name, enabled.utf8));
        line(out, if limit > 0 { " \"\"" } else { "" });
    }
    if limit > 0 {
        line(
            out,
            &format!(
                "* QUOTA \"\" (STORAGE {} {})",
                used.div_ceil(1024),
                limit / 1024
            ),
        );
    }
}

pub fn write_status(
    out: &mut Vec<u8>,
    name: &str,
    st: &Status,
    items: &[StatusItem],
    enabled: Enabled,
) {
    out.extend_from_slice(b"* STATUS ");
    mailbox(out, &names::encode(name, enabled.utf8));
    let parts: Vec<String> = items
        .iter()
        .map(|i| match i {
            StatusItem::Messages => format!("MESSAGES {}", st.messages),
            StatusItem::Recent => format!("RECENT {}", st.recent),
            StatusItem::UidNext => format!("UIDNEXT {}", st.uidnext),
            StatusItem::UidValidity => {
                format!("UIDVALIDITY {}", st.uidvalidity)
            }
            StatusItem::Unseen => format!("UNSEEN {}", st.unseen),
            StatusItem::Deleted => format!("DELETED {}", st.deleted),
            StatusItem::Size => format!("SIZE {}", st.size),
            StatusItem::HighestModSeq => {
                format!("HIGHESTMODSEQ {}", st.highest_modseq)
            }
        })
        .collect();
    line(out, &format!(" ({})", parts.join(" ")));
}
