//! The keys of the small HTTP listener: what it serves besides client
//! settings (the MTA-STS policy's mode) and who may read `/metrics`.

use super::net::Cidr;
use crate::proto::http::pages::StsMode;

/// HTTP settings, defaults applied (the listeners are `Config`'s, with
/// every other listener).
#[derive(Debug, Clone)]
pub struct Web {
    /// The MTA-STS policy's mode (RFC 8461 3.2).
    pub mta_sts_mode: StsMode,
    /// The policy's max_age in seconds.
    pub mta_sts_max_age: u64,
    /// Clients that may read `/metrics`.
    pub metrics_allow: Vec<Cidr>,
}

impl Default for Web {
    fn default() -> Web {
        Web {
            mta_sts_mode: StsMode::Testing,
            mta_sts_max_age: 7 * 86_400,
            metrics_allow: ["127.0.0.0/8", "::1"]
                .iter()
                .map(|c| Cidr::parse(c).expect("invariant: literal"))
                .collect(),
        }
    }
}

impl Web {
    /// Applies one key; None if the key is not one of ours.
    pub fn set(
        &mut self,
        key: &str,
        value: &str,
    ) -> Option<Result<(), String>> {
        let result = match key {
            "mta_sts_mode" => match value {
                "testing" => Ok(StsMode::Testing),
                "enforce" => Ok(StsMode::Enforce),
                "none" => Ok(StsMode::None),
                _ => {
                    Err("mta_sts_mode is testing, enforce or none".to_string())
                }
            }
            .map(|m| self.mta_sts_mode = m),
            "mta_sts_max_age" => super::outbound::duration(value)
                .and_then(|secs| match secs {
                    // RFC 8461 3.2: up to 31557600 seconds (a year).
                    1..=31_557_600 => Ok(secs),
                    _ => Err("mta_sts_max_age is 1 second to a year".into()),
                })
                .map(|secs| self.mta_sts_max_age = secs),
            "metrics_allow" => super::items(value)
                .map(Cidr::parse)
                .collect::<Result<_, _>>()
                .map(|c| self.metrics_allow = c),
            _ => return None,
        };
        Some(result)
    }

    /// True if `ip` may read `/metrics`.
    pub fn metrics_allowed(&self, ip: std::net::IpAddr) -> bool {
        self.metrics_allow.iter().any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let mut w = Web::default();
        assert!(w.metrics_allowed("127.0.0.1".parse().unwrap()));
        assert!(!w.metrics_allowed("192.0.2.1".parse().unwrap()));
        w.set("metrics_allow", "192.0.2.0/24, ::1")
            .unwrap()
            .unwrap();
        assert!(w.metrics_allowed("192.0.2.1".parse().unwrap()));
        assert!(!w.metrics_allowed("127.0.0.1".parse().unwrap()));
        w.set("mta_sts_mode", "enforce").unwrap().unwrap();
        assert_eq!(w.mta_sts_mode, StsMode::Enforce);
        assert!(w.set("mta_sts_mode", "strict").unwrap().is_err());
        w.set("mta_sts_max_age", "1d").unwrap().unwrap();
        assert_eq!(w.mta_sts_max_age, 86_400);
        assert!(w.set("mta_sts_max_age", "0").unwrap().is_err());
        assert!(w.set("hostname", "x").is_none());
    }
}
