//! The log sink: forwarding, levels and redaction.

use std::sync::{Arc, Mutex};

use tokenkeeper_uniffi::{
    LogLevel, LogRecord, LogSink, TokenKeeperError, clear_log_sink, set_log_sink,
};

#[derive(Default)]
struct Collect(Mutex<Vec<LogRecord>>);

impl LogSink for Collect {
    fn log(&self, record: LogRecord) -> Result<(), TokenKeeperError> {
        self.0.lock().unwrap().push(record);
        Ok(())
    }
}

#[test]
fn sink_gets_redacted_records_at_its_level_only() {
    let sink = Arc::new(Collect::default());
    set_log_sink(sink.clone(), LogLevel::Info).unwrap();
    let token = crate::facade::JWT;
    tracing::info!(target: "tokenkeeper::test", attempt = 2, "fetched {token}");
    tracing::debug!(target: "tokenkeeper::test", "below the level");
    tracing::info!(target: "hyper::client", "other crates need warn");
    tracing::warn!(target: "hyper::client", "other crate warning");
    clear_log_sink();
    tracing::error!(target: "tokenkeeper::test", "after clearing");
    let records = sink.0.lock().unwrap();
    // Other tests run sessions in parallel in this process: look at this test's targets only.
    let texts: Vec<(LogLevel, &str, &str)> = records
        .iter()
        .filter(|r| r.target == "tokenkeeper::test" || r.target == "hyper::client")
        .map(|r| (r.level, r.target.as_str(), r.message.as_str()))
        .collect();
    assert_eq!(
        texts,
        vec![
            (
                LogLevel::Info,
                "tokenkeeper::test",
                "fetched eyJhbG…(86 chars) attempt=2"
            ),
            (LogLevel::Warn, "hyper::client", "other crate warning"),
        ]
    );
}
