//! Where a domain's mail goes, from its MX answer (RFC 5321 5.1): the
//! hosts in order of preference (random among equals, to spread load
//! as the domain asked), the domain itself when it has no MX, and the
//! answers that end delivery at once (null MX, RFC 7505; no such
//! domain) or for now (a failed lookup).

use super::cache::Found;
use super::resolver::Failure;
use super::wire::Rec;

/// What to do with mail for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// These hosts, to be tried in this order.
    Hosts(Vec<String>),
    /// No MX: the domain's own addresses (implicit MX).
    Implicit,
    /// The domain takes no mail (null MX): bounce, 5.1.10.
    NullMx,
    /// No such domain: bounce, 5.1.2.
    NoSuchDomain,
    /// The lookup failed: try again later.
    Defer(String),
}

/// The route an MX lookup's result gives. `random` picks the order among
/// hosts of equal preference (a number below its argument).
pub fn from_mx(
    result: &Result<Found, Failure>,
    random: &mut dyn FnMut(usize) -> usize,
) -> Route {
    let records = match result {
        Ok(Found::Records(r)) => r,
        Ok(Found::NoData) => return Route::Implicit,
        Ok(Found::NxDomain) => return Route::NoSuchDomain,
        Err(Failure::BadName) => return Route::NoSuchDomain,
        Err(f) => return Route::Defer(format!("MX lookup failed: {f:?}")),
    };
    let mut mx: Vec<(u16, &str)> = records
        .iter()
        .filter_map(|r| match r {
            Rec::Mx(pref, host) => Some((*pref, host.as_str())),
            _ => None,
        })
        .collect();
    if mx.is_empty() {
        return Route::Implicit;
    }
    // RFC 7505: a lone MX of "." means no mail; among others it is noise.
    if let [(_, "")] = mx.as_slice() {
        return Route::NullMx;
    }
    mx.retain(|(_, h)| !h.is_empty());
    mx.sort_by_key(|(p, _)| *p);
    let mut hosts = Vec::with_capacity(mx.len());
    let mut i = 0;
    while i < mx.len() {
        let pref = mx[i].0;
        let mut same: Vec<&str> = mx[i..]
            .iter()
            .take_while(|(p, _)| *p == pref)
            .map(|(_, h)| *h)
            .collect();
        i += same.len();
        // Fisher-Yates over the hosts of this preference.
        for k in (1..same.len()).rev() {
            let j = random(k + 1).min(k);
            same.swap(k, j);
        }
        for h in same {
            if !hosts.iter().any(|x: &String| x == h) {
                hosts.push(h.to_string());
            }
        }
    }
    Route::Hosts(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mx(list: &[(u16, &str)]) -> Result<Found, Failure> {
        Ok(Found::Records(
            list.iter()
                .map(|(p, h)| Rec::Mx(*p, h.to_string()))
                .collect(),
        ))
    }

    #[test]
    fn preference_order_and_ties_shuffled() {
        let mut none = |_: usize| 0;
        let got = from_mx(
            &mx(&[(20, "b.example"), (10, "a.example"), (30, "c.example")]),
            &mut none,
        );
        assert_eq!(
            got,
            Route::Hosts(vec![
                "a.example".into(),
                "b.example".into(),
                "c.example".into()
            ])
        );
        // Equal preferences: both orders happen.
        let mut seen = std::collections::HashSet::new();
        for seed in 0..8usize {
            let mut n = seed;
            let mut random = |k: usize| {
                n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (n >> 8) % k
            };
            if let Route::Hosts(h) = from_mx(
                &mx(&[
                    (10, "x.example"),
                    (10, "y.example"),
                    (5, "first.example"),
                ]),
                &mut random,
            ) {
                assert_eq!(h[0], "first.example");
                seen.insert(h[1].clone());
            }
        }
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn null_mx_implicit_and_failures() {
        let mut none = |_: usize| 0;
        assert_eq!(from_mx(&mx(&[(0, "")]), &mut none), Route::NullMx);
        assert_eq!(
            from_mx(&mx(&[(0, ""), (10, "a.example")]), &mut none),
            Route::Hosts(vec!["a.example".into()])
        );
        assert_eq!(from_mx(&Ok(Found::NoData), &mut none), Route::Implicit);
        assert_eq!(
            from_mx(&Ok(Found::NxDomain), &mut none),
            Route::NoSuchDomain
        );
        assert!(matches!(
            from_mx(&Err(Failure::Timeout), &mut none),
            Route::Defer(_)
        ));
        assert!(matches!(
            from_mx(&Err(Failure::Server("SERVFAIL")), &mut none),
            Route::Defer(_)
        ));
    }
}
