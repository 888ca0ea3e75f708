//! Sizes and durations written the way DS's YAML file and `DS_*` variables write them.
//!
//! DS reads `cache.max_size: 10GB` as 10·1024³ bytes and `cache.ttl: 7d` with Go's
//! `time.ParseDuration` extended by a `d` unit; these parsers accept the same text.

use std::time::Duration;

/// Parses a byte size: `10GB`, `512MB`, `1GiB`, `1.5 GB`, `4096`.
///
/// Every unit is binary (`KB` = `KiB` = 1024), as in DS. Returns the reason on failure.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || format!("expected a size like 10GB, 512MB or a number of bytes, got {text:?}");
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(invalid()),
    };
    let multiplier = 1u64 << shift;
    if number.contains('.') {
        let value: f64 = number.parse().map_err(|_| invalid())?;
        let bytes = value * multiplier as f64;
        // `u64::MAX as f64` rounds up to 2^64, so the comparison is strict.
        if bytes.is_finite() && bytes < u64::MAX as f64 {
            Ok(bytes as u64)
        } else {
            Err(invalid())
        }
    } else {
        let value: u64 = number.parse().map_err(|_| invalid())?;
        value.checked_mul(multiplier).ok_or_else(invalid)
    }
}

/// Parses a duration: Go `ParseDuration` syntax plus `d` (`7d`, `1h30m`, `1.5h`, `250ms`), or
/// a plain number of seconds (`3600`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid =
        || format!("expected a duration like 7d, 24h, 1h30m or a number of seconds, got {text:?}");
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| invalid());
    }
    if trimmed.is_empty() {
        return Err(invalid());
    }
    let mut rest = trimmed;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            _ => return Err(invalid()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        // Digits beyond nanosecond precision of a day cannot change the result.
        let fraction = &fraction[..fraction.len().min(15)];
        let fraction_nanos = if fraction.is_empty() {
            0
        } else {
            let digits: u128 = fraction.parse().map_err(|_| invalid())?;
            digits * unit_nanos / 10u128.pow(fraction.len() as u32)
        };
        total_nanos = whole
            .checked_mul(unit_nanos)
            .and_then(|n| n.checked_add(fraction_nanos))
            .and_then(|n| n.checked_add(total_nanos))
            .filter(|n| *n <= u128::from(u64::MAX))
            .ok_or_else(invalid)?;
        rest = after;
    }
    u64::try_from(total_nanos)
        .map(Duration::from_nanos)
        .map_err(|_| invalid())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units_like_ds() {
        assert_eq!(parse_size("10GB").unwrap(), 10 * 1024 * 1024 * 1024);
        assert_eq!(parse_size("512MB").unwrap(), 512 * 1024 * 1024);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_size(" 2 TB ").unwrap(), 2 << 40);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("1.5GB").unwrap(), 3 << 29);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("100B").unwrap(), 100);
        assert_eq!(parse_size("0").unwrap(), 0);
    }

    #[test]
    fn bad_sizes_are_rejected() {
        for bad in [
            "",
            "GB",
            "ten",
            "10XB",
            "-1GB",
            "1.2.3GB",
            "99999999999TB",
            "1e3",
        ] {
            let reason = parse_size(bad).unwrap_err();
            assert!(reason.contains(&format!("{bad:?}")), "{reason}");
        }
    }

    #[test]
    fn durations_accept_go_syntax_days_and_seconds() {
        let hour = Duration::from_secs(3600);
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration("24h").unwrap(), 24 * hour);
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration(".5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("3µs").unwrap(), Duration::from_micros(3));
        assert_eq!(
            parse_duration("2d12h").unwrap(),
            Duration::from_secs(216_000)
        );
        assert_eq!(parse_duration("3600").unwrap(), hour);
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn bad_durations_are_rejected() {
        for bad in [
            "",
            "d",
            "7 days",
            "1H",
            "-1h",
            "1h-5m",
            ".h",
            "1.2.3s",
            "999999999999d",
        ] {
            let reason = parse_duration(bad).unwrap_err();
            assert!(reason.contains(&format!("{bad:?}")), "{reason}");
        }
    }
}
