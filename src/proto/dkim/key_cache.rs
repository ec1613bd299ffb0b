//! Key records read once: the same senders' keys come back message
//! after message, and reading one (tags, base64) costs more than the
//! lookup that found it. Keyed by the record's own text, so a changed
//! record is read again; bounded, and emptied when full.

use std::collections::HashMap;

use super::tags::Key;
use super::verify::{Outcome, read_key};

/// Records kept at most.
const MAX_KEYS: usize = 256;
/// A record longer than this is read each time (an RSA 4096 key's is
/// about 750 octets).
const MAX_RECORD: usize = 2048;

/// Records read, and what they said.
#[derive(Default)]
pub struct KeyCache {
    read: HashMap<Vec<Vec<u8>>, Result<Key, Outcome>>,
}

impl KeyCache {
    /// The key the TXT strings `texts` give, read once while kept.
    pub fn read(&mut self, texts: Vec<Vec<u8>>) -> Result<Key, Outcome> {
        if let Some(known) = self.read.get(&texts) {
            return known.clone();
        }
        let key = read_key(&texts);
        if texts.iter().map(Vec::len).sum::<usize>() <= MAX_RECORD {
            if self.read.len() >= MAX_KEYS {
                self.read.clear();
            }
            self.read.insert(texts, key.clone());
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_once_and_bounded() {
        let mut cache = KeyCache::default();
        let good = b"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".to_vec();
        let first = cache.read(vec![good.clone()]);
        assert_eq!(cache.read(vec![good.clone()]), first);
        assert!(first.is_ok());
        // A changed record is read again, not taken for the old one.
        assert!(cache.read(vec![b"v=DKIM1; k=nope; p=".to_vec()]).is_err());
        assert!(cache.read(vec![good.clone(), good.clone()]).is_err());
        for i in 0..MAX_KEYS + 5 {
            let _ = cache.read(vec![format!("v=DKIM1; p=x{i}").into_bytes()]);
        }
        assert!(cache.read.len() <= MAX_KEYS);
        assert_eq!(cache.read(vec![good]), first);
    }
}
