//! `uribl` from the loop: the registered domains of a message's links
//! (found by the checks helper as it read the message) asked of each
//! healthy link list. A listed domain sends the message into every
//! recipient's Junk, saying which list named which domain; it is never
//! refused for it (the links may be quoted, or forged onto a
//! stranger's mail). The message waits for the answers (each lookup
//! has its deadline; one that fails counts as not listed), then is
//! stored.

use crate::proto::dns::cache::Found;
use crate::proto::dns::resolver::Failure;
use crate::proto::dns::wire::Qtype;
use crate::proto::dnsbl;
use crate::proto::smtp::Envelope;
use crate::server::Server;
use crate::server::outbound::dns::Waiter;
use crate::store::content::Content;
use crate::util::logsafe::Quoted;

use super::blocklists::{Role, listed};
use super::check_state::{Ask, LinkAsks, Placement};

const LOG_TARGET: &str = "postling::server::blocklists";

impl Server {
    /// True if a link list is healthy: the checks helper then looks for
    /// the message's links.
    pub(in crate::server) fn link_lists_in_use(&self) -> bool {
        self.smtp
            .blocklists
            .as_ref()
            .is_some_and(|bl| !bl.zones(Role::Link).is_empty())
    }

    /// Asks each link list about each domain; the message is stored
    /// once they have answered.
    pub(in crate::server) fn ask_link_lists(
        &mut self,
        (slot, generation): (usize, u64),
        envelope: Envelope,
        content: Content,
        placement: Placement,
        links: Vec<String>,
    ) {
        let Some(bl) = self.smtp.blocklists.as_mut() else {
            return self.store(slot, envelope, Ok(content), placement);
        };
        let zones = bl.zones(Role::Link);
        let serial = bl.next_serial();
        let asks: Vec<(String, String, Option<bool>)> = links
            .iter()
            .flat_map(|d| {
                zones.iter().map(move |(_, z)| (d.clone(), z.clone(), None))
            })
            .collect();
        let names: Vec<Option<String>> = asks
            .iter()
            .map(|(domain, zone, _)| dnsbl::domain_query(domain, zone))
            .collect();
        let Some(s) = self
            .live_conn(slot, generation)
            .and_then(|c| c.session.as_smtp())
        else {
            return;
        };
        s.checks.link_lists = Some(Box::new(LinkAsks {
            serial,
            asks,
            waiting: Box::new((envelope, content, placement)),
        }));
        for (i, name) in names.into_iter().enumerate() {
            match name {
                Some(name) => {
                    let waiter =
                        Waiter::Check(slot, generation, serial, Ask::Link(i));
                    self.dns_lookup(&name, Qtype::A, waiter);
                }
                // Too long to be listed.
                None => self.link_answered(
                    (slot, generation, serial),
                    i,
                    Err(Failure::BadName),
                ),
            }
        }
    }

    /// A link list answered (or its lookup failed).
    pub(in crate::server) fn link_answered(
        &mut self,
        (slot, generation, serial): (usize, u64, u64),
        index: usize,
        result: Result<Found, Failure>,
    ) {
        let Some(s) = self
            .live_conn(slot, generation)
            .and_then(|c| c.session.as_smtp())
        else {
            return;
        };
        let Some(links) =
            s.checks.link_lists.as_mut().filter(|l| l.serial == serial)
        else {
            return;
        };
        let Some(ask) = links.asks.get_mut(index) else {
            return;
        };
        let name = dnsbl::domain_query(&ask.0, &ask.1).unwrap_or_default();
        ask.2 = Some(result.is_ok_and(|found| listed(&ask.1, &name, &found)));
        if links.asks.iter().any(|a| a.2.is_none()) {
            return;
        }
        let Some(links) = s.checks.link_lists.take() else {
            return;
        };
        let (envelope, content, mut placement) = *links.waiting;
        if let Some((domain, zone, _)) =
            links.asks.iter().find(|a| a.2 == Some(true))
        {
            log::info!(target: LOG_TARGET, "id={} link domain {} listed by {zone}: to Junk",
                envelope.id, Quoted(domain));
            placement
                .summary
                .push_str(&format!(" uribl={domain}@{zone}"));
            let why = format!("reason=\"URIBL {zone} lists {domain}\"");
            placement.filed = self.junk_for_all(&envelope, &why);
        }
        self.store(slot, envelope, Ok(content), placement);
    }
}
