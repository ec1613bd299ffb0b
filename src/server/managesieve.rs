//! The loop's side of ManageSieve: a logged-in user's script command
//! goes to a durability helper (scripts are written durably), and its
//! answer comes back to the session that asked.

use crate::proto::managesieve::ScriptOp;
use crate::server::Server;
use crate::server::base::writer::Task;

impl Server {
    /// Sends a script command's work to a helper.
    pub(in crate::server) fn script_work(
        &mut self,
        slot: usize,
        op: ScriptOp,
    ) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let key = (slot, conn.generation);
        let Some(user) = conn
            .session
            .as_sieve()
            .and_then(|s| s.user().map(str::to_string))
        else {
            return;
        };
        let root = self.services.config.mailbox_dir(&user);
        self.core.writer.send((Task::Script { root, op }, key));
    }

    /// A script command's answer: written, then the next command read.
    pub(in crate::server) fn scripted(&mut self, slot: usize, answer: &[u8]) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let Some(session) = conn.session.as_sieve() else {
            return;
        };
        session.done(answer, &mut conn.wbuf);
        self.resume(slot);
    }
}
