//! The log stream (`setLogSink`): the core's forwarder, levels and redaction, as Dart receives
//! them.

use tokenkeeper_frb::api::logging::{LogLevel, clear_log_sink, set_log_sink_into};

use crate::support::channel_target;

#[test]
fn the_log_stream_gets_redacted_records_at_its_level_only() {
    let (target, mut rx) = channel_target();
    set_log_sink_into(LogLevel::Info, target).unwrap();
    let token = "007eJxTYBBbSAWYzr1PWsMHCALbNBiX2eQY2Jc3fXTI0Ng6Ez3";
    tracing::info!(target: "tokenkeeper::frb_test", attempt = 2, "fetched {token}");
    tracing::debug!(target: "tokenkeeper::frb_test", "below the level");
    tracing::info!(target: "hyper::frb_test", "other libraries need warn");
    tracing::warn!(target: "hyper::frb_test", "other library warning");
    clear_log_sink();
    tracing::error!(target: "tokenkeeper::frb_test", "after clearing");
    let mut seen = Vec::new();
    while let Ok(r) = rx.try_recv() {
        // Other tests run sessions in this process at the same time: look at ours only.
        if r.target.ends_with("::frb_test") {
            seen.push((r.level, r.target, r.message));
        }
    }
    assert_eq!(
        seen,
        [
            (
                LogLevel::Info,
                "tokenkeeper::frb_test".to_owned(),
                "fetched 007eJx…(50 chars) attempt=2".to_owned()
            ),
            (
                LogLevel::Warn,
                "hyper::frb_test".to_owned(),
                "other library warning".to_owned()
            ),
        ]
    );
}
