//! Durations as people write them in config and flags: `300s`, `5m`, `1h30m`, `750ms`, or a bare number
//! of seconds.

use std::time::{Duration, Instant};

/// The longest duration anything accepts (a run timeout, a wait): 30 days. Longer ones are refused when
/// read, so no deadline computed from one can overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// How [`MAX_DURATION`] is written in errors.
pub const MAX_DURATION_TEXT: &str = "30d";

/// Parses `300`, `300s`, `5m`, `1h30m`, `2h`, `750ms`, `1d`. Rejects empty, negative and zero-less
/// garbage, and anything longer than [`MAX_DURATION`] (saying the limit). The one parser of every
/// duration: config keys, flags and YAML files.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let too_long = || format!("invalid duration {text:?}: longer than the maximum of {MAX_DURATION_TEXT}");
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u64>() {
            Ok(secs) if secs <= MAX_DURATION.as_secs() => Ok(Duration::from_secs(secs)),
            _ => Err(too_long()),
        };
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        if digits == 0 {
            return Err(format!("invalid duration {text:?}: expected a number before {rest:?}"));
        }
        let value: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: bad number {:?}", &rest[..digits]))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "ms" => value / 1000.0,
            "s" | "sec" | "secs" => value,
            "m" | "min" | "mins" => value * 60.0,
            "h" | "hr" | "hrs" => value * 3600.0,
            "d" => value * 86_400.0,
            "" => return Err(format!("invalid duration {text:?}: missing unit after {value}")),
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m, h, d)"
                ));
            }
        };
        // Checked before converting: a huge or non-finite number must be an error, never a panic.
        if !(secs.is_finite() && secs <= MAX_DURATION.as_secs_f64()) {
            return Err(too_long());
        }
        total = total.saturating_add(Duration::from_secs_f64(secs));
        if total > MAX_DURATION {
            return Err(too_long());
        }
    }
    Ok(total)
}

/// `from + d`, or a point far in the future (about a century) when that is past what an instant can
/// hold: a deadline that never overflows, whatever the duration.
pub fn deadline_after(from: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 86_400);
    from.checked_add(d).or_else(|| from.checked_add(FAR)).unwrap_or(from)
}

/// Formats a duration the way [`parse_duration`] reads it back (`1h2m3s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("750ms"), Ok(Duration::from_millis(750)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("10").is_ok());
    }

    #[test]
    fn refuses_durations_past_the_maximum_and_says_it() {
        for text in ["99999999999999999999999s", "5000000000000000h", "2592001", "31d", "29d24h1s"] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains("maximum of 30d"), "{text}: {err}");
        }
        let long = "9".repeat(400) + "s";
        assert!(parse_duration(&long).unwrap_err().contains("maximum of 30d"));
        assert_eq!(parse_duration("30d"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("2592000"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("29d24h"), Ok(MAX_DURATION));
    }

    #[test]
    fn deadlines_never_overflow() {
        let now = Instant::now();
        assert!(deadline_after(now, Duration::MAX) > now);
        assert_eq!(deadline_after(now, Duration::from_secs(5)), now + Duration::from_secs(5));
    }

    #[test]
    fn formats_round_trip() {
        for text in ["1h2m3s", "250ms", "5m", "2h"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
    }
}
