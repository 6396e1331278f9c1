//! Durations typed by people (`yrd verify --max-age 10m`): one or more
//! `<integer><unit>` parts with the units `ms`, `s`, `m`, `h`, `d`
//! (`90s`, `10m`, `1h30m`, `7d`), added up. No unit, a negative number, an
//! unknown unit or an overflow is refused with the reason.

use anyhow::{anyhow, bail};

/// Milliseconds in each unit.
const UNITS: [(&str, u64); 5] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];

/// Parses a duration into milliseconds.
pub fn parse_duration_ms(input: &str) -> anyhow::Result<u64> {
    let s = input.trim();
    if s.is_empty() {
        bail!("empty duration: give e.g. 90s, 10m, 1h30m or 7d");
    }
    let mut rest = s;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            bail!("{input:?} is not a duration: expected a number at {rest:?} (e.g. 90s, 10m, 1h30m, 7d)");
        }
        let n: u64 = rest[..digits].parse().map_err(|e| anyhow!("{input:?}: {e}"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        let Some((_, ms)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            bail!("{input:?} is not a duration: unit {unit:?} after {n} must be one of ms, s, m, h, d");
        };
        rest = &rest[unit_len..];
        total = n.checked_mul(*ms).and_then(|v| total.checked_add(v)).ok_or_else(|| anyhow!("{input:?} is too long a duration"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("90s").unwrap(), 90_000);
        assert_eq!(parse_duration_ms("10m").unwrap(), 600_000);
        assert_eq!(parse_duration_ms("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("7d").unwrap(), 604_800_000);
        assert_eq!(parse_duration_ms("250ms").unwrap(), 250);
        assert_eq!(parse_duration_ms("0s").unwrap(), 0);
        for bad in ["", "10", "m", "-5m", "5 m", "5x", "1.5h", "99999999999999999999d", "9999999999999999d"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?}");
        }
    }
}
