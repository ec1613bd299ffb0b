//! The resolver's answers as SPF asks and reads them: the one place
//! the DNS types and SPF's meet (the loop's checks and `postling
//! doctor` both drive SPF with them).

use crate::proto::dns::cache::Found;
use crate::proto::dns::resolver::Failure;
use crate::proto::dns::wire::{Qtype, Rec};
use crate::proto::spf::check::{self as spf, Answer};

/// SPF's question type as the resolver's.
pub fn wire_type(q: spf::Qtype) -> Qtype {
    match q {
        spf::Qtype::A => Qtype::A,
        spf::Qtype::Aaaa => Qtype::Aaaa,
        spf::Qtype::Mx => Qtype::Mx,
        spf::Qtype::Txt => Qtype::Txt,
        spf::Qtype::Ptr => Qtype::Ptr,
    }
}

/// A resolver answer as SPF reads it.
pub fn spf_answer(result: Result<Found, Failure>) -> Answer {
    let recs = match result {
        Ok(Found::Records(r)) => r,
        Ok(Found::NoData | Found::NxDomain) | Err(Failure::BadName) => {
            return Answer::Void;
        }
        Err(_) => return Answer::TempFail,
    };
    let (mut addrs, mut names, mut texts) =
        (Vec::new(), Vec::new(), Vec::new());
    for r in recs {
        match r {
            Rec::A(a) => addrs.push(a.into()),
            Rec::Aaaa(a) => addrs.push(a.into()),
            Rec::Mx(_, host) if !host.is_empty() => names.push(host),
            Rec::Mx(..) => {}
            Rec::Ptr(n) => names.push(n),
            Rec::Txt(t) => {
                texts.push(String::from_utf8_lossy(&t).into_owned())
            }
            // SPF never asks for SRV.
            Rec::Srv(..) => {}
        }
    }
    match () {
        _ if !addrs.is_empty() => Answer::Addrs(addrs),
        _ if !names.is_empty() => Answer::Names(names),
        _ if !texts.is_empty() => Answer::Texts(texts),
        _ => Answer::Void,
    }
}
