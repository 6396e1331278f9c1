//! Times for people: in the local time zone by default, in UTC with `--utc`.
//!
//! The zone is `TZ` (a zone name such as `Asia/Shanghai`, looked up under
//! /usr/share/zoneinfo) or /etc/localtime, read as a TZif file (RFC 8536): the offset
//! and abbreviation in force at the instant shown. Without a readable zone, UTC.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by `--utc` (a global flag of `yrd`).
static UTC: AtomicBool = AtomicBool::new(false);

pub fn set_utc(utc: bool) {
    UTC.store(utc, Ordering::Relaxed);
}

/// Largest zone file read (real ones are a few KiB).
const MAX_TZIF_BYTES: u64 = 256 * 1024;

/// A zone: transitions (seconds since the epoch, index into `types`) and types
/// (offset in seconds, abbreviation).
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    transitions: Vec<(i64, usize)>,
    types: Vec<(i32, String)>,
}

impl Zone {
    /// Offset and abbreviation at `secs` since the epoch.
    pub fn at(&self, secs: i64) -> (i32, &str) {
        let i = self.transitions.partition_point(|(t, _)| *t <= secs);
        let ty = if i == 0 { 0 } else { self.transitions[i - 1].1 };
        self.types.get(ty).map_or((0, "UTC"), |(o, a)| (*o, a.as_str()))
    }

    /// Parses a TZif file (version 1, or the 64-bit block of versions 2 and later).
    pub fn parse(bytes: &[u8]) -> Option<Zone> {
        let header = |b: &[u8]| -> Option<(u8, [usize; 6])> {
            if b.len() < 44 || &b[..4] != b"TZif" {
                return None;
            }
            let mut counts = [0usize; 6];
            for (i, c) in counts.iter_mut().enumerate() {
                let at = 20 + 4 * i;
                *c = u32::from_be_bytes(b[at..at + 4].try_into().ok()?) as usize;
            }
            Some((b[4], counts))
        };
        let (version, [isut, isstd, leap, time, ty, chars]) = header(bytes)?;
        let v1_len = time * 5 + ty * 6 + chars + leap * 8 + isstd + isut;
        let (data, size, counts) = if version >= b'2' {
            let second = bytes.get(44 + v1_len..)?;
            let (_, c) = header(second)?;
            (second.get(44..)?, 8usize, c)
        } else {
            (bytes.get(44..)?, 4usize, [isut, isstd, leap, time, ty, chars])
        };
        let [_, _, _, time, ty, chars] = counts;
        let times = data.get(..time * size)?;
        let idx = data.get(time * size..time * size + time)?;
        let infos = data.get(time * (size + 1)..time * (size + 1) + ty * 6)?;
        let abbrevs = data.get(time * (size + 1) + ty * 6..time * (size + 1) + ty * 6 + chars)?;
        let mut types = Vec::with_capacity(ty);
        for i in 0..ty {
            let info = &infos[i * 6..i * 6 + 6];
            let offset = i32::from_be_bytes(info[..4].try_into().ok()?);
            let start = info[5] as usize;
            let end = abbrevs.get(start..)?.iter().position(|b| *b == 0).map_or(abbrevs.len(), |p| start + p);
            types.push((offset, String::from_utf8_lossy(abbrevs.get(start..end)?).into_owned()));
        }
        let mut transitions = Vec::with_capacity(time);
        for i in 0..time {
            let t = if size == 8 {
                i64::from_be_bytes(times[i * 8..i * 8 + 8].try_into().ok()?)
            } else {
                i64::from(i32::from_be_bytes(times[i * 4..i * 4 + 4].try_into().ok()?))
            };
            let k = idx[i] as usize;
            if k >= ty {
                return None;
            }
            transitions.push((t, k));
        }
        if types.is_empty() {
            return None;
        }
        Some(Zone { transitions, types })
    }
}

fn read_zone(path: &std::path::Path) -> Option<Zone> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path).ok()?.take(MAX_TZIF_BYTES).read_to_end(&mut bytes).ok()?;
    Zone::parse(&bytes)
}

/// This machine's zone: `TZ` (a zone name) or /etc/localtime.
fn local_zone() -> Option<Zone> {
    match std::env::var("TZ") {
        Ok(tz) if !tz.trim().is_empty() => {
            let name = tz.trim().trim_start_matches(':');
            if name == "UTC" || name == "UTC0" || name.contains("..") {
                return None;
            }
            let path = if name.starts_with('/') { std::path::PathBuf::from(name) } else { std::path::Path::new("/usr/share/zoneinfo").join(name) };
            read_zone(&path)
        }
        _ => read_zone(std::path::Path::new("/etc/localtime")),
    }
}

static ZONE: std::sync::OnceLock<Option<Zone>> = std::sync::OnceLock::new();

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS[.mmm] ZONE` — local time
/// with its abbreviation and offset (`2026-01-01 08:00:00 CST +08:00`), or UTC
/// (`… UTC`) with `--utc` or when the zone is UTC or unknown.
pub fn format_ms(ms: u64, millis: bool) -> String {
    let secs = (ms / 1000) as i64;
    let (offset, abbrev) = if UTC.load(Ordering::Relaxed) {
        (0, "UTC".to_string())
    } else {
        match ZONE.get_or_init(local_zone) {
            Some(z) => {
                let (o, a) = z.at(secs);
                (o, a.to_string())
            }
            None => (0, "UTC".to_string()),
        }
    };
    let local = secs + i64::from(offset);
    let (days, rem) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let frac = if millis { format!(".{:03}", ms % 1000) } else { String::new() };
    let zone = if offset == 0 && (abbrev == "UTC" || abbrev.is_empty()) {
        "UTC".to_string()
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let a = offset.unsigned_abs();
        format!("{abbrev} {sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
    };
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}{frac} {zone}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}
