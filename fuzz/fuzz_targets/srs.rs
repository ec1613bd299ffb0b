//! Any local part as a bounce's SRS0 address (it comes from RCPT TO,
//! UTF-8 allowed): no panic, and nothing passes that we did not make.
//! Any sender we forward for comes back as it was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::outbound::srs;

const SECRET: &[u8] = b"fuzzing secret, 32 octets long!!";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let day = 20_000;
    // A forged address passes only if it hits the 20-bit hash.
    let _ = srs::reverse(SECRET, text, day);
    if let Some((local, domain)) = text.rsplit_once('@')
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains(['=', '@'])
    {
        let sender = format!("{local}@{domain}");
        let made = srs::forward(SECRET, &sender, "ours.example", day);
        let (ours, _) = made.rsplit_once('@').unwrap_or_default();
        assert_eq!(srs::reverse(SECRET, ours, day + 5).as_deref(), Ok(sender.as_str()));
    }
});
