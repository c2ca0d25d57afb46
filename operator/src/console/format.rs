//! How the console writes times and amounts.

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The calendar date of a day count since 1970-01-01 (proleptic Gregorian), by eras of
/// 400 years (146,097 days), counted from March so that the leap day ends the year.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // March = 0
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

/// A token amount in base units, with its decimal value when the token's decimals are known:
/// `2500000 (2.5)`.
pub fn amount(units: u128, decimals: Option<u8>) -> String {
    match decimals {
        Some(d) if d > 0 => format!("{units} ({})", decimal(units, d)),
        _ => units.to_string(),
    }
}

/// `units / 10^decimals` written exactly, without trailing zeros (`2.5`, `3`, `0.000001`).
pub fn decimal(units: u128, decimals: u8) -> String {
    let digits = units.to_string();
    let d = usize::from(decimals);
    let (int, frac) = if digits.len() > d {
        let (i, f) = digits.split_at(digits.len() - d);
        (i.to_owned(), f.to_owned())
    } else {
        ("0".to_owned(), format!("{digits:0>d$}"))
    };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int
    } else {
        format!("{int}.{frac}")
    }
}

/// A positive amount in base units typed into a form (digits only, at most 39 of them).
pub fn parse_amount(text: &str) -> Option<u128> {
    let text = text.trim();
    if text.is_empty() || text.len() > 39 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|v: &u128| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_calendar_times() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 (a leap day of a century leap year), 12:34:56.
        assert_eq!(time(951_827_696_000), "2000-02-29 12:34:56 UTC");
        assert_eq!(time(1_796_410_140_000), "2026-12-04 18:49:00 UTC");
        assert_eq!(time(-1000), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn amounts_show_units_and_decimals() {
        assert_eq!(amount(2_500_000, Some(6)), "2500000 (2.5)");
        assert_eq!(amount(3_000_000, Some(6)), "3000000 (3)");
        assert_eq!(amount(1, Some(6)), "1 (0.000001)");
        assert_eq!(amount(42, None), "42");
        assert_eq!(decimal(1_234_567, 6), "1.234567");
    }

    #[test]
    fn typed_amounts_are_positive_digits() {
        assert_eq!(parse_amount(" 500 "), Some(500));
        for bad in ["", "0", "-1", "1.5", "1e6", "0x10", &"9".repeat(40)] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
    }
}
