//! The payments page's chart: volume and outcomes of one merchant's payments per hour (last 24
//! hours) or per day (last 14 days), drawn server-side as SVG.
//!
//! The data is one narrow query of this module ([`recent_outcomes`]): the creation time, status
//! and captured / refunded amounts of the merchant's payments created in the window, at most
//! [`MAX_ROWS`] of them (newest first). When the REST list of payments with filters lands, the
//! chart can keep this query: it reads only what it draws.

use std::fmt::Write;

use sqlx::Row;
use uuid::Uuid;

use crate::lifecycle::PaymentStatus;
use crate::store::{Store, StoreError};

/// Most payments the chart reads.
pub const MAX_ROWS: i64 = 10_000;

/// Hourly (24 buckets) or daily (14 buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The last 24 hours.
    Hour,
    /// The last 14 days.
    Day,
}

impl Span {
    /// `hour` or `day`.
    pub fn as_str(self) -> &'static str {
        match self {
            Span::Hour => "hour",
            Span::Day => "day",
        }
    }

    fn bucket_ms(self) -> i64 {
        match self {
            Span::Hour => 3_600_000,
            Span::Day => 86_400_000,
        }
    }

    fn buckets(self) -> usize {
        match self {
            Span::Hour => 24,
            Span::Day => 14,
        }
    }
}

/// One payment as the chart sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Status now.
    pub status: PaymentStatus,
    /// Captured so far.
    pub captured: u128,
    /// Refunded so far.
    pub refunded: u128,
}

/// The outcome groups the chart colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Captured,
    Refunded,
    Released,
    Failed,
    Open,
}

const OUTCOMES: [(Outcome, &str, &str); 5] = [
    (Outcome::Captured, "o-captured", "captured"),
    (Outcome::Refunded, "o-refunded", "refunded"),
    (
        Outcome::Released,
        "o-released",
        "voided / expired / reclaimed",
    ),
    (Outcome::Failed, "o-failed", "failed"),
    (Outcome::Open, "o-open", "held or in flight"),
];

fn outcome(status: PaymentStatus) -> Outcome {
    use PaymentStatus as S;
    match status {
        S::Captured | S::PartiallyCaptured => Outcome::Captured,
        S::Refunded | S::PartiallyRefunded => Outcome::Refunded,
        S::Voided | S::Expired | S::Reclaimed => Outcome::Released,
        S::Failed => Outcome::Failed,
        _ => Outcome::Open,
    }
}

/// The merchant's payments created at or after `since_ms` (at most [`MAX_ROWS`]).
pub async fn recent_outcomes(
    store: &Store,
    merchant_id: Uuid,
    since_ms: i64,
) -> Result<Vec<Point>, StoreError> {
    let rows = sqlx::query(
        "SELECT created_at, status, captured_amount, refunded_amount FROM payments \
         WHERE merchant_id = $1 AND created_at >= $2 ORDER BY id DESC LIMIT $3",
    )
    .bind(merchant_id.hyphenated().to_string())
    .bind(since_ms)
    .bind(MAX_ROWS)
    .fetch_all(store.pool())
    .await?;
    let decode = |column: &'static str, message: String| StoreError::Decode { column, message };
    rows.iter()
        .map(|row| {
            let status: String = row.try_get("status")?;
            let captured: String = row.try_get("captured_amount")?;
            let refunded: String = row.try_get("refunded_amount")?;
            Ok(Point {
                created_at: row.try_get("created_at")?,
                status: status
                    .parse()
                    .map_err(|_| decode("status", format!("unknown status {status:?}")))?,
                captured: captured
                    .parse()
                    .map_err(|e| decode("captured_amount", format!("{e}")))?,
                refunded: refunded
                    .parse()
                    .map_err(|e| decode("refunded_amount", format!("{e}")))?,
            })
        })
        .collect()
}

/// Where the window of `span` ending at `now_ms` starts (the start of the oldest bucket).
pub fn window_start(span: Span, now_ms: i64) -> i64 {
    let size = span.bucket_ms();
    let last = now_ms.div_euclid(size) * size;
    last - size * (span.buckets() as i64 - 1)
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    start_ms: i64,
    volume: u128,
    counts: [u64; 5],
}

fn buckets(span: Span, now_ms: i64, points: &[Point]) -> Vec<Bucket> {
    let start = window_start(span, now_ms);
    let size = span.bucket_ms();
    let mut out: Vec<Bucket> = (0..span.buckets())
        .map(|i| Bucket {
            start_ms: start + size * i as i64,
            ..Bucket::default()
        })
        .collect();
    for p in points {
        if p.created_at < start {
            continue;
        }
        let Ok(i) = usize::try_from((p.created_at - start) / size) else {
            continue;
        };
        let Some(b) = out.get_mut(i) else { continue };
        b.volume = b
            .volume
            .saturating_add(p.captured.saturating_sub(p.refunded));
        let k = OUTCOMES
            .iter()
            .position(|(o, _, _)| *o == outcome(p.status))
            .unwrap_or(OUTCOMES.len() - 1);
        b.counts[k] += 1;
    }
    out
}

fn label(span: Span, start_ms: i64) -> String {
    let secs = start_ms.div_euclid(1000);
    let (_, m, d) = super::format::civil_from_days(secs.div_euclid(86_400));
    match span {
        Span::Hour => format!("{:02}h", secs.rem_euclid(86_400) / 3600),
        Span::Day => format!("{m:02}-{d:02}"),
    }
}

const W: f64 = 960.0;
const LEFT: f64 = 40.0;
const VOL_TOP: f64 = 24.0;
const VOL_H: f64 = 90.0;
const CNT_TOP: f64 = 140.0;
const CNT_H: f64 = 90.0;
const H: f64 = 260.0;

/// The chart of `points` over the window of `span` ending at `now_ms`: net captured volume
/// (captured − refunded, base units) per bucket on top, payment counts by outcome stacked below,
/// a `<title>` on every bar, and a legend. Only numbers and fixed labels go into the markup.
pub fn svg(span: Span, now_ms: i64, points: &[Point]) -> String {
    let buckets = buckets(span, now_ms, points);
    let max_volume = buckets.iter().map(|b| b.volume).max().unwrap_or(0).max(1);
    let max_count = buckets
        .iter()
        .map(|b| b.counts.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (W - LEFT) / buckets.len() as f64;
    let bar = (slot * 0.7).max(2.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" id="chart" viewBox="0 0 {W} {H}" role="img" aria-label="volume and outcomes per {}" xmlns="http://www.w3.org/2000/svg">"#,
        span.as_str()
    );
    let _ = write!(
        s,
        r#"<text x="0" y="14">net captured volume (max {max_volume})</text><text x="0" y="{}">payments by outcome (max {max_count})</text>"#,
        CNT_TOP - 8.0
    );
    for (y, h) in [(VOL_TOP, VOL_H), (CNT_TOP, CNT_H)] {
        let _ = write!(
            s,
            r#"<line class="axis" x1="{LEFT}" y1="{0}" x2="{W}" y2="{0}"/>"#,
            y + h
        );
    }
    for (i, b) in buckets.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let when = label(span, b.start_ms);
        let h = VOL_H * (b.volume as f64) / (max_volume as f64);
        let _ = write!(
            s,
            r#"<rect class="vol" x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{h:.1}"><title>{when}: net volume {}</title></rect>"#,
            VOL_TOP + VOL_H - h,
            b.volume
        );
        let mut y = CNT_TOP + CNT_H;
        for (k, (_, class, name)) in OUTCOMES.iter().enumerate() {
            let n = b.counts[k];
            if n == 0 {
                continue;
            }
            let h = CNT_H * n as f64 / max_count as f64;
            y -= h;
            let _ = write!(
                s,
                r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}"><title>{when}: {n} {name}</title></rect>"#
            );
        }
        let every = if buckets.len() > 14 { 3 } else { 1 };
        if i % every == 0 {
            let _ = write!(
                s,
                r#"<text x="{x:.1}" y="{}">{when}</text>"#,
                CNT_TOP + CNT_H + 14.0
            );
        }
    }
    s.push_str("</svg><p class=\"legend\"><span><i class=\"vol\"></i>net captured volume</span>");
    for (_, class, name) in OUTCOMES {
        let _ = write!(s, r#"<span><i class="{class}"></i>{name}</span>"#);
    }
    s.push_str("</p>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn point(created_at: i64, status: PaymentStatus, captured: u128, refunded: u128) -> Point {
        Point {
            created_at,
            status,
            captured,
            refunded,
        }
    }

    #[test]
    fn payments_fall_into_their_hour_and_outcome() {
        let now = 1_796_410_140_000; // 18:49
        let points = [
            point(now, PaymentStatus::Captured, 500, 0),
            point(
                now - 10 * 60_000,
                PaymentStatus::PartiallyRefunded,
                1000,
                400,
            ),
            point(now - 2 * HOUR, PaymentStatus::Voided, 0, 0),
            point(now - 2 * HOUR, PaymentStatus::Failed, 0, 0),
            point(now - 30 * HOUR, PaymentStatus::Captured, 7, 0), // outside the window
        ];
        let b = buckets(Span::Hour, now, &points);
        assert_eq!(b.len(), 24);
        assert_eq!(b[23].start_ms, now.div_euclid(HOUR) * HOUR);
        assert_eq!(b[23].volume, 500 + 600);
        assert_eq!(b[23].counts, [1, 1, 0, 0, 0]);
        assert_eq!(b[21].counts, [0, 0, 1, 1, 0]);
        let total: u64 = b.iter().flat_map(|b| b.counts).sum();
        assert_eq!(total, 4);
    }

    #[test]
    fn the_svg_has_a_bar_per_outcome_and_labels() {
        let now = 1_796_410_140_000;
        let svg = svg(
            Span::Day,
            now,
            &[point(now, PaymentStatus::Authorized, 0, 0)],
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(
            svg.contains("<title>12-04: 1 held or in flight</title>"),
            "{svg}"
        );
        assert_eq!(svg.matches("class=\"vol\"").count(), 14 + 1);
        assert!(svg.contains(">11-21</text>"), "{svg}");
    }
}
