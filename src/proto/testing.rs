//! Test helpers shared by the protocol tests.

/// Seeded pseudo-random scripts (xorshift, so no dependency and the same
/// on every run): each mixes whole `words` with stray octets. Yields the
/// script and a chunk size to feed it in.
pub fn random_scripts(
    words: &[&[u8]],
    seed: u64,
    scripts: usize,
    parts: usize,
) -> Vec<(Vec<u8>, usize)> {
    let mut seed = seed | 1;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..scripts)
        .map(|_| {
            let mut input = Vec::new();
            for _ in 0..parts {
                let r = next();
                if r % 3 == 0 {
                    input.push((r >> 8) as u8);
                } else {
                    input.extend_from_slice(
                        words[(r >> 16) as usize % words.len()],
                    );
                }
            }
            (input, (next() % 17) as usize + 1)
        })
        .collect()
}
