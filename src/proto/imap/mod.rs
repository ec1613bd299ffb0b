//! IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501): the command parser
//! and the session, fed bytes like SMTP and POP3. Mailboxes on disk are
//! the loop's business: the session asks for them with an [`ImapStep`]
//! and reads the selected one's state through [`Folder`].

pub mod args;
pub mod command;
pub mod fetch;
pub mod frame;
pub mod search;
pub mod sequence;
pub mod utf7;
