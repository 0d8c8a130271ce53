//! Time for the services: RFC 867 daytime text, the tutorial's strftime answers, RFC 868
//! seconds since 1900, and NTP timestamps.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Local, Utc};

/// Seconds from 1900-01-01 (the time and NTP epoch) to 1970-01-01 (the Unix epoch).
pub const EPOCH_1900: u64 = 2_208_988_800;

/// RFC 867 daytime: one human-readable line, as inetd's daytime answers.
pub fn daytime(utc: bool) -> String {
    // ctime(3) style, which xinetd also uses: "Tue Nov 24 18:30:00 2026".
    format_now("%a %b %e %H:%M:%S %Y\r\n", utc).unwrap_or_default()
}

/// The current time in a strftime `format` (the tutorial's time server).
///
/// # Errors
/// A sentence saying what is wrong with the format.
pub fn format_now(format: &str, utc: bool) -> Result<String, String> {
    let items: Vec<Item<'_>> = StrftimeItems::new(format).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(format!(
            "'{format}' is not a valid strftime format (fields look like %Y %m %d %H:%M:%S)"
        ));
    }
    let mut out = String::new();
    let written = if utc {
        write!(out, "{}", Utc::now().format_with_items(items.iter()))
    } else {
        let now: DateTime<Local> = Local::now();
        write!(out, "{}", now.format_with_items(items.iter()))
    };
    written.map_err(|_| format!("'{format}' cannot be formatted for this date"))?;
    Ok(out)
}

/// RFC 868 time: seconds since 1900 as 32 bits, big-endian (wraps in 2036, as the RFC allows).
pub fn rfc868_now() -> [u8; 4] {
    let since_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    ((since_unix.as_secs() + EPOCH_1900) as u32).to_be_bytes()
}

/// The current time as a 64-bit NTP timestamp (32.32 fixed point since 1900).
pub fn ntp_now() -> u64 {
    let since_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = (since_unix.as_secs() + EPOCH_1900) & 0xffff_ffff;
    let frac = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_keeps_text_around_fields() {
        let year = Utc::now().format("%Y").to_string();
        assert_eq!(
            format_now("今天是%Y年", true).unwrap(),
            format!("今天是{year}年")
        );
    }

    #[test]
    fn bad_formats_are_refused_not_panicking() {
        assert!(format_now("%Q", true)
            .unwrap_err()
            .contains("not a valid strftime"));
        assert!(format_now("%", true).is_err());
    }

    #[test]
    fn rfc868_is_after_2020() {
        let secs = u32::from_be_bytes(rfc868_now());
        assert!(secs > 3_786_825_600); // 2020-01-01
        assert!(ntp_now() >> 32 > 3_786_825_600);
    }
}
