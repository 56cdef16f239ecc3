//! Wall time as the lab records it: seconds since the Unix epoch, as f64.
//! What the lab records and shows reads a [`Now`], which a face may fix;
//! what measures elapsed time (silence, stalls, budgets) reads [`now`].

use std::time::{SystemTime, UNIX_EPOCH};

/// The machine's clock.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// What "now" is for what the lab records and shows: the times written to
/// run folders, reviews and the notebook, the ages of runs and the running
/// time of live ones.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Now {
    /// The machine's clock.
    #[default]
    Wall,
    /// One moment, whatever the machine's clock says, so that output which
    /// records or shows times is the same on every run. Elapsed time
    /// (silence, stalls, budgets, timeouts) still passes on the wall.
    Fixed(f64),
}

impl Now {
    /// The time to record or show at this moment.
    pub fn get(self) -> f64 {
        self.stamp(now())
    }

    /// The time to record for a moment the wall read as `wall`.
    pub fn stamp(self, wall: f64) -> f64 {
        match self {
            Now::Wall => wall,
            Now::Fixed(t) => t,
        }
    }

    /// A fixed moment: RFC 3339 (`2026-01-01T00:00:00Z`, a date alone is
    /// midnight UTC) or Unix seconds (`1767225600`).
    pub fn fixed(text: &str) -> Result<Now, String> {
        let t = text.trim();
        let secs = match t.parse::<f64>() {
            Ok(secs) => Some(secs).filter(|s| (0.0..=MAX_UNIX_S).contains(s)),
            Err(_) => parse_rfc3339(t),
        };
        secs.map(Now::Fixed).ok_or_else(|| {
            format!("bad time '{text}': use RFC 3339 (2026-01-01T00:00:00Z) or Unix seconds (1767225600)")
        })
    }
}

/// The end of year 9999, the last moment RFC 3339 writes.
const MAX_UNIX_S: f64 = 253_402_300_799.0;

/// `2026-11-26T05:56:31.250Z`: RFC 3339 in UTC, milliseconds.
pub fn rfc3339(t: f64) -> String {
    let ms = (t * 1000.0).round() as i64;
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A short human duration: `850ms`, `42s`, `3m05s`, `2h14m`, `3d04h`.
pub fn human_duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    if secs < 1.0 {
        return format!("{}ms", (secs * 1000.0).round() as u64);
    }
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The longest duration labmate takes: 100 years of 365 days. Anything
/// longer means "never", and would not fit a timer.
pub const MAX_DURATION_S: f64 = 100.0 * 365.0 * 86_400.0;

/// Parses a duration: `90`, `90s`, `500ms`, `5m`, `2h`, `1d`, `1h30m`;
/// at most [`MAX_DURATION_S`].
pub fn parse_duration(text: &str) -> Result<f64, String> {
    let secs = parse_seconds(text)?;
    if secs > MAX_DURATION_S {
        return Err(format!("bad duration '{text}': longer than 100 years"));
    }
    Ok(secs)
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return if secs >= 0.0 && secs.is_finite() { Ok(secs) } else { Err(format!("bad duration '{text}'")) };
    }
    let mut total = 0.0;
    let mut rest = t;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let unit_len = rest[num_len..].find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len() - num_len);
        let (num, unit) = (&rest[..num_len], &rest[num_len..num_len + unit_len]);
        let n: f64 = num.parse().map_err(|_| format!("bad duration '{text}': expected a number"))?;
        let scale = match unit {
            "ms" => 0.001,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => {
                return Err(format!("bad duration '{text}': unknown unit '{unit}' (use ms, s, m, h or d)"));
            }
        };
        total += n * scale;
        rest = &rest[num_len + unit_len..];
    }
    Ok(total)
}

/// Parses a point in time: RFC 3339 (`2026-11-26T05:00:00Z`, a date alone
/// is midnight UTC) or a duration ago (`10m` = ten minutes before `now`).
pub fn parse_time(text: &str, now: f64) -> Result<f64, String> {
    if let Ok(ago) = parse_duration(text) {
        return Ok(now - ago);
    }
    parse_rfc3339(text)
        .ok_or_else(|| format!("bad time '{text}': use RFC 3339 (2026-11-26T05:00:00Z) or a duration ago (10m, 2h)"))
}

fn parse_rfc3339(s: &str) -> Option<f64> {
    let s = s.trim();
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, t),
        None => (s, "00:00:00Z"),
    };
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    // Out of range fields are no date; in range, the arithmetic cannot overflow.
    if !(0..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        let (oh, om) = (oh.parse::<i64>().ok()?, om.parse::<i64>().ok()?);
        if !(0..=23).contains(&oh) || !(0..=59).contains(&om) {
            return None;
        }
        (c, sign * (oh * 3600 + om * 60))
    } else {
        (time, 0)
    };
    let mut c = clock.split(':');
    let (h, mi) = (c.next()?.parse::<i64>().ok()?, c.next()?.parse::<i64>().ok()?);
    let sec: f64 = c.next().unwrap_or("0").parse().ok()?;
    if !(0..=23).contains(&h) || !(0..=59).contains(&mi) || !(0.0..61.0).contains(&sec) {
        return None;
    }
    let days = days_from_civil(y, m as u32, day as u32);
    Some((days * 86_400 + h * 3600 + mi * 60 - offset) as f64 + sec)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_parse() {
        assert_eq!(parse_duration("90").unwrap(), 90.0);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400.0);
        assert_eq!(parse_duration("500ms").unwrap(), 0.5);
        assert!(parse_duration("5 parsecs").unwrap_err().contains("unknown unit"));
        assert_eq!(parse_time("2025-11-26T05:36:31.250Z", 0.0).unwrap(), 1_764_135_391.25);
        assert_eq!(parse_time("2000-02-29", 0.0).unwrap(), 951_782_400.0);
        assert_eq!(parse_time("10m", 1000.0).unwrap(), 400.0);
        assert!(parse_time("yesterday", 0.0).is_err());
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_764_135_391.25), "2025-11-26T05:36:31.250Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn a_fixed_now_is_rfc3339_or_unix_seconds_and_stamps_every_moment() {
        assert_eq!(Now::fixed("2025-11-26T05:36:31.250Z"), Ok(Now::Fixed(1_764_135_391.25)));
        assert_eq!(Now::fixed("2000-02-29"), Ok(Now::Fixed(951_782_400.0)));
        assert_eq!(Now::fixed(" 1767225600 "), Ok(Now::Fixed(1_767_225_600.0)));
        for bad in ["", "yesterday", "10m", "-5", "NaN", "inf", "1e300", "2026-13-01"] {
            let e = Now::fixed(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("RFC 3339"), "{bad}: {e}");
        }
        let fixed = Now::Fixed(100.0);
        assert_eq!((fixed.get(), fixed.stamp(5.0)), (100.0, 100.0));
        assert_eq!(Now::Wall.stamp(5.0), 5.0);
        assert!(Now::Wall.get() > 1.7e9);
    }

    #[test]
    fn formats_durations() {
        assert_eq!(human_duration(0.25), "250ms");
        assert_eq!(human_duration(42.0), "42s");
        assert_eq!(human_duration(185.0), "3m05s");
        assert_eq!(human_duration(8040.0), "2h14m");
        assert_eq!(human_duration(273_600.0), "3d04h");
    }
}
