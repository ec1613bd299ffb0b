//! Maps that must not grow past a bound whatever strangers do: room is
//! made by dropping what is stale, then the older half.

use std::collections::HashMap;
use std::hash::Hash;

/// Makes room for one more key in `map` when it holds `cap` entries:
/// entries whose time is at or before `stale` go first, then, if it is
/// still full, the older half.
pub fn make_room<K: Hash + Eq, T: Ord + Copy>(
    map: &mut HashMap<K, T>,
    cap: usize,
    stale: T,
) {
    if map.len() < cap {
        return;
    }
    map.retain(|_, t| *t > stale);
    if map.len() >= cap {
        let mut times: Vec<T> = map.values().copied().collect();
        let (_, middle, _) = times.select_nth_unstable(cap / 2);
        let cut = *middle;
        map.retain(|_, t| *t > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_first_then_the_older_half() {
        let mut m: HashMap<u32, u64> =
            (0..10).map(|i| (i, u64::from(i))).collect();
        make_room(&mut m, 10, 2);
        assert_eq!(m.len(), 7, "0, 1 and 2 were stale");
        // Nothing stale: the older half goes, the newest stays.
        let mut m: HashMap<u32, u64> =
            (1..=10).map(|i| (i, u64::from(i))).collect();
        make_room(&mut m, 10, 0);
        assert!(m.len() <= 5 && m.contains_key(&10), "{m:?}");
    }
}
