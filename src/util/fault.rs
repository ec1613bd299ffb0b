//! Fault injection for the containment tests: only with the cargo
//! feature `fault-injection`, which release builds never enable. With
//! it, `POSTLING_FAULT=PLACE:NEEDLE` makes [`probe`] panic at PLACE
//! (`content`, `command`, `deliver`, `read`, `queue`, `settle`) whenever the data
//! it is shown contains NEEDLE. Without the feature, `probe` is empty.

/// Panics if fault injection is on for `place` and `data` holds the
/// configured needle.
#[inline(always)]
pub fn probe(place: &str, data: &[u8]) {
    #[cfg(feature = "fault-injection")]
    if let Some((at, needle)) = configured()
        && at == place
        && memchr::memmem::find(data, needle.as_bytes()).is_some()
    {
        panic!("fault injected at {place}");
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = (place, data);
}

#[cfg(feature = "fault-injection")]
fn configured() -> Option<&'static (String, String)> {
    static FAULT: std::sync::OnceLock<Option<(String, String)>> =
        std::sync::OnceLock::new();
    FAULT
        .get_or_init(|| {
            let spec = std::env::var("POSTLING_FAULT").ok()?;
            let (at, needle) = spec.split_once(':')?;
            Some((at.to_string(), needle.to_string()))
        })
        .as_ref()
}
