//! NOTIFY (RFC 5465): which mailboxes a client wants to hear of without
//! asking, and what it wants to hear; the STATUS lines it gets for
//! mailboxes other than the selected one.

use super::args::{Args, Bad};
use super::types::{Status, StatusItem};

/// Mailboxes an event group covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// The selected mailbox; `delayed`: expunges wait for a command
    /// that allows them.
    Selected {
        /// `SELECTED-DELAYED`.
        delayed: bool,
    },
    /// Where new mail arrives: INBOX.
    Inboxes,
    /// Every mailbox of the user.
    Personal,
    /// Subscribed mailboxes.
    Subscribed,
    /// These mailboxes and everything below them.
    Subtree(Vec<String>),
    /// These mailboxes.
    Mailboxes(Vec<String>),
}

/// What a client wants to hear of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    /// MessageNew.
    pub new: bool,
    /// MessageExpunge.
    pub expunge: bool,
    /// FlagChange.
    pub flags: bool,
    /// MailboxName: created, deleted, renamed.
    pub names: bool,
    /// SubscriptionChange.
    pub subscriptions: bool,
}

impl Events {
    fn any(self) -> bool {
        self.messages() || self.names || self.subscriptions
    }

    /// Whether these events are about a folder's messages.
    pub fn messages(self) -> bool {
        self.new || self.expunge || self.flags
    }

    /// The STATUS items that say what these events are about (RFC 5465
    /// 5.1, as Dovecot answers them).
    pub fn status_items(self) -> Vec<StatusItem> {
        let mut items = Vec::new();
        if self.new || self.expunge {
            items.push(StatusItem::Messages);
        }
        if self.new {
            items.push(StatusItem::UidNext);
        }
        if self.new || self.flags {
            items.push(StatusItem::UidValidity);
        }
        if self.flags {
            items.push(StatusItem::HighestModSeq);
        }
        items
    }

    /// Whether the change from `was` to `now` is one of these events.
    pub fn wants(self, was: &Status, now: &Status) -> bool {
        let arrived = now.uidnext.saturating_sub(was.uidnext);
        let expunged = was.messages.saturating_add(arrived) > now.messages;
        let renewed = now.uidvalidity != was.uidvalidity;
        (self.new && (arrived > 0 || renewed))
            || (self.expunge && (expunged || renewed))
            || (self.flags && now.highest_modseq != was.highest_modseq)
    }
}

/// One `(filter events)` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The mailboxes.
    pub filter: Filter,
    /// The events (none: `NONE`).
    pub events: Events,
}

/// A NOTIFY SET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    /// Send each mailbox's STATUS at once.
    pub status: bool,
    /// The groups, in order: the first that covers a mailbox decides.
    pub groups: Vec<Group>,
}

impl Spec {
    /// The events for the selected mailbox, and whether its expunges
    /// wait (`SELECTED-DELAYED`); None if it is not covered.
    pub fn selected(&self) -> Option<(Events, bool)> {
        self.groups.iter().find_map(|g| match g.filter {
            Filter::Selected { delayed } => Some((g.events, delayed)),
            _ => None,
        })
    }

    /// The events for the mailbox `name` when it is not selected.
    pub fn for_mailbox(&self, name: &str, subscribed: bool) -> Events {
        let below = |roots: &[String]| {
            roots.iter().any(|r| {
                name == r
                    || name.strip_prefix(r.as_str()).is_some_and(|rest| {
                        rest.starts_with(super::names::SEPARATOR)
                    })
            })
        };
        self.groups
            .iter()
            .find(|g| match &g.filter {
                Filter::Selected { .. } => false,
                Filter::Inboxes => name == "INBOX",
                Filter::Personal => true,
                Filter::Subscribed => subscribed,
                Filter::Subtree(roots) => below(roots),
                Filter::Mailboxes(list) => list.iter().any(|m| m == name),
            })
            .map(|g| g.events)
            .unwrap_or_default()
    }

    /// Whether any group wants MailboxName or SubscriptionChange.
    pub fn names(&self) -> Events {
        let mut e = Events::default();
        for g in &self.groups {
            e.names |= g.events.names;
            e.subscriptions |= g.events.subscriptions;
        }
        e
    }
}

/// Why a NOTIFY is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Malformed.
    Bad(&'static str),
    /// An event we do not offer (`NO [BADEVENT ...]`).
    BadEvent,
}

impl From<Bad> for Refused {
    fn from(b: Bad) -> Refused {
        Refused::Bad(b.0)
    }
}

/// The events we offer, for `BADEVENT`.
pub const OFFERED: &str =
    "(MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)";

/// Reads what follows `NOTIFY `: None for `NONE`. Mailbox names are
/// decoded by `decode`.
pub fn parse(
    a: &mut Args<'_>,
    decode: impl Fn(&[u8]) -> Result<String, &'static str>,
) -> Result<Option<Spec>, Refused> {
    if a.keyword("NONE") {
        a.end()?;
        return Ok(None);
    }
    if !a.keyword("SET") {
        return Err(Refused::Bad("expected SET or NONE"));
    }
    let mut spec = Spec::default();
    a.sp()?;
    if a.keyword("STATUS") {
        spec.status = true;
        a.sp()?;
    }
    let mut bad_event = false;
    loop {
        if !a.byte(b'(') {
            return Err(Refused::Bad("expected ("));
        }
        let filter = filter(a, &decode)?;
        a.sp()?;
        let events = if a.keyword("NONE") {
            Events::default()
        } else {
            let (events, unknown) = events(a)?;
            bad_event |= unknown;
            if !events.any() && !unknown {
                return Err(Refused::Bad("empty event list"));
            }
            events
        };
        if !a.byte(b')') {
            return Err(Refused::Bad("expected )"));
        }
        // RFC 5465 5: the selected mailbox's messages come in and go
        // together; flag changes need both.
        if matches!(filter, Filter::Selected { .. })
            && (events.new != events.expunge || (events.flags && !events.new))
        {
            return Err(Refused::Bad(
                "MessageNew and MessageExpunge go together",
            ));
        }
        if spec.groups.len() >= 100 {
            return Err(Refused::Bad("too many event groups"));
        }
        spec.groups.push(Group { filter, events });
        if a.at_end() {
            break;
        }
        a.sp()?;
    }
    if bad_event {
        return Err(Refused::BadEvent);
    }
    Ok(Some(spec))
}

fn filter(
    a: &mut Args<'_>,
    decode: &impl Fn(&[u8]) -> Result<String, &'static str>,
) -> Result<Filter, Refused> {
    let word = a.name().to_ascii_uppercase();
    Ok(match word.as_slice() {
        b"SELECTED" => Filter::Selected { delayed: false },
        b"SELECTED-DELAYED" => Filter::Selected { delayed: true },
        b"INBOXES" => Filter::Inboxes,
        b"PERSONAL" => Filter::Personal,
        b"SUBSCRIBED" => Filter::Subscribed,
        b"SUBTREE" => Filter::Subtree(mailboxes(a, decode)?),
        b"MAILBOXES" => Filter::Mailboxes(mailboxes(a, decode)?),
        _ => return Err(Refused::Bad("unknown mailbox filter")),
    })
}

/// One mailbox or a parenthesised list of them.
fn mailboxes(
    a: &mut Args<'_>,
    decode: &impl Fn(&[u8]) -> Result<String, &'static str>,
) -> Result<Vec<String>, Refused> {
    a.sp()?;
    let raw = if a.peek() == Some(b'(') {
        a.list(|a| Ok(a.astring()?.into_owned()))?
    } else {
        vec![a.astring()?.into_owned()]
    };
    if raw.is_empty() || raw.len() > 1000 {
        return Err(Refused::Bad("bad mailbox list"));
    }
    raw.iter()
        .map(|r| decode(r).map_err(Refused::Bad))
        .collect()
}

/// `(event ...)`; true as well if some event is one we do not offer.
fn events(a: &mut Args<'_>) -> Result<(Events, bool), Refused> {
    if !a.byte(b'(') {
        return Err(Refused::Bad("expected an event list"));
    }
    let mut e = Events::default();
    let mut unknown = false;
    loop {
        let word = a.name().to_ascii_uppercase();
        match word.as_slice() {
            b"MESSAGENEW" => {
                e.new = true;
                if a.peek() == Some(b' ')
                    && a.buffer().get(a.position() + 1) == Some(&b'(')
                {
                    // Fetch attributes for new messages: not offered.
                    a.sp()?;
                    a.list(|a| Ok(a.name().to_vec()))?;
                    unknown = true;
                }
            }
            b"MESSAGEEXPUNGE" => e.expunge = true,
            b"FLAGCHANGE" => e.flags = true,
            b"MAILBOXNAME" => e.names = true,
            b"SUBSCRIPTIONCHANGE" => e.subscriptions = true,
            b"" => return Err(Refused::Bad("expected an event")),
            _ => unknown = true,
        }
        if a.byte(b')') {
            return Ok((e, unknown));
        }
        a.sp()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<Option<Spec>, Refused> {
        let mut a = Args::new(text.as_bytes());
        parse(&mut a, |raw| Ok(String::from_utf8_lossy(raw).into_owned()))
    }

    #[test]
    fn forms() {
        let s = run("SET STATUS (selected (MessageNew MessageExpunge)) (mailboxes (a b) (MessageNew))")
            .unwrap_or_else(|e| panic!("{e:?}"))
            .unwrap_or_else(|| panic!("none"));
        assert!(s.status);
        assert_eq!(s.selected().map(|(e, d)| (e.new, d)), Some((true, false)));
        assert!(s.for_mailbox("b", false).new);
        assert!(!s.for_mailbox("c", false).new);
        let s = run(
            "SET (subtree Lists (MessageNew MessageExpunge)) (personal NONE)",
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
        .unwrap_or_else(|| panic!("none"));
        assert!(s.for_mailbox("Lists.rust", false).new);
        assert!(!s.for_mailbox("Listsx", false).new);
        assert_eq!(run("NONE"), Ok(None));
    }

    #[test]
    fn refused() {
        assert_eq!(
            run("SET (selected (MessageNew (UID)))"),
            Err(Refused::Bad("MessageNew and MessageExpunge go together"))
        );
        assert_eq!(
            run("SET (personal (AnnotationChange))"),
            Err(Refused::BadEvent)
        );
        for bad in [
            "",
            "SET",
            "SET ()",
            "SET (bogus (MessageNew))",
            "SET (personal ())",
            "SET (selected (FlagChange))",
            "NONE x",
        ] {
            assert!(matches!(run(bad), Err(Refused::Bad(_))), "{bad}");
        }
    }

    #[test]
    fn status_items_follow_events() {
        let e = Events {
            expunge: true,
            ..Events::default()
        };
        assert_eq!(e.status_items(), vec![StatusItem::Messages]);
        let e = Events {
            new: true,
            ..Events::default()
        };
        assert_eq!(
            e.status_items(),
            vec![
                StatusItem::Messages,
                StatusItem::UidNext,
                StatusItem::UidValidity
            ]
        );
        let e = Events {
            flags: true,
            ..Events::default()
        };
        assert_eq!(
            e.status_items(),
            vec![StatusItem::UidValidity, StatusItem::HighestModSeq]
        );
    }
}
