//! IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501): the command parser
//! and the session, fed bytes like SMTP and POP3. Mailboxes on disk are
//! the loop's business: the session asks with a [`request::Request`]
//! and reads the selected folder's shared state ([`folder::Folder`]).

pub mod append;
pub mod args;
pub mod arrange;
pub mod command;
pub mod driver;
pub mod fetch;
pub mod folder;
pub mod frame;
mod list;
pub mod matcher;
pub mod mime;
pub mod names;
pub mod notify;
pub mod render;
pub mod request;
pub mod response;
pub mod search;
mod selected;
pub mod sequence;
pub mod session;
pub mod sort;
pub mod structure;
pub mod thread;
pub mod types;
pub mod updates;
pub mod url;
pub mod urlfetch;
pub mod utf7;

pub use request::ImapStep;
pub use session::{AppendSink, Imap, Settings};
pub use types::Enabled;
