//! Tests of the retry schedule, validation and payload inspection.

use std::time::Duration;

use super::worker::request_id;
use super::*;

fn config(schedule_ms: &[u64], max_attempts: u32, jitter: f64) -> WebhookWorkerConfig {
    WebhookWorkerConfig {
        retry_schedule: schedule_ms
            .iter()
            .map(|m| Duration::from_millis(*m))
            .collect(),
        max_attempts,
        jitter,
        ..WebhookWorkerConfig::default()
    }
}

#[test]
fn default_schedule_is_the_standard_one() {
    let c = WebhookWorkerConfig::default();
    c.validate().unwrap();
    let secs: Vec<u64> = (1..=9)
        .map(|n| c.base_delay(n).unwrap().as_secs())
        .collect();
    assert_eq!(
        secs,
        vec![5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    );
    assert_eq!(c.base_delay(10), None, "ten attempts in all");
}

#[test]
fn last_step_repeats_and_attempts_are_bounded() {
    let c = config(&[10, 20], 5, 0.0);
    let d: Vec<_> = (1..=5).map(|n| c.retry_delay(n)).collect();
    assert_eq!(
        d,
        vec![
            Some(Duration::from_millis(10)),
            Some(Duration::from_millis(20)),
            Some(Duration::from_millis(20)),
            Some(Duration::from_millis(20)),
            None
        ]
    );
    // Extra attempts after a crash still end in a give-up.
    assert_eq!(c.retry_delay(7), None);
}

#[test]
fn jitter_stays_within_bounds() {
    let c = config(&[1000], 3, 0.2);
    for _ in 0..1000 {
        let d = c.retry_delay(1).unwrap().as_millis();
        assert!((800..=1200).contains(&d), "{d}");
    }
}

#[test]
fn validation() {
    let ok = WebhookWorkerConfig::default();
    ok.validate().unwrap();
    let mut c = ok.clone();
    c.lock = c.request_timeout;
    assert!(c.validate().is_err());
    let mut c = ok.clone();
    c.retry_schedule.clear();
    assert!(c.validate().is_err());
    let mut c = ok.clone();
    c.jitter = 1.5;
    assert!(c.validate().is_err());
    let mut c = ok;
    c.max_attempts = 0;
    assert!(c.validate().is_err());
}

#[test]
fn request_id_is_found_in_either_shape() {
    let sdk_shape = serde_json::json!({"id": "e", "data": {"requestId": "r1"}});
    let flat = serde_json::json!({"request_id": "r2"});
    assert_eq!(request_id(&sdk_shape), Some("r1"));
    assert_eq!(request_id(&flat), Some("r2"));
    assert_eq!(request_id(&serde_json::json!({})), None);
}
