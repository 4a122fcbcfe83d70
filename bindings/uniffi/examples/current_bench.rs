//! Timing loop for the bindings note (not a test): cost of `Session::current()` called from Rust
//! through the same façade object the bindings use. Compare with `scripts/test-kotlin.sh --bench`
//! and `scripts/test-python.sh --bench`.
//!
//! `cargo run -p tokenkeeper-uniffi --release --example current_bench`

use std::hint::black_box;
use std::sync::Arc;

use tokenkeeper_uniffi::{
    FetchRequest, FetchedToken, Keeper, Secret, SessionConfig, SessionSpec, TokenKeeperError,
    TokenSource,
};

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJl";

struct Static;

#[async_trait::async_trait]
impl TokenSource for Static {
    async fn fetch(&self, _: FetchRequest) -> Result<FetchedToken, TokenKeeperError> {
        Ok(FetchedToken {
            token: Secret::new(JWT.into()),
            expires_at: None,
            expires_in: None,
            issued_at: None,
            server_time: None,
            rotated_credentials: None,
        })
    }
}

fn main() -> Result<(), TokenKeeperError> {
    let keeper = Keeper::new(None, None)?;
    let spec = SessionSpec {
        channel: "bench".into(),
        user: "u1".into(),
        role: None,
        params: Default::default(),
    };
    let config = SessionConfig {
        spec,
        credentials_key: None,
        policy: None,
        prefetch: false,
    };
    let session = keeper.open_session(config, Arc::new(Static), None);
    futures::executor::block_on(session.token())?;
    for _ in 0..20_000 {
        black_box(session.current());
    }
    let n: u32 = 1_000_000;
    let clock = tokenkeeper::clock::SystemClock::new();
    let t0 = tokenkeeper::clock::Clock::monotonic(&clock);
    for _ in 0..n {
        black_box(session.current());
    }
    let elapsed = tokenkeeper::clock::Clock::monotonic(&clock) - t0;
    #[allow(clippy::print_stdout)]
    {
        println!(
            "rust: current() on the façade: {} ns/call ({n} calls)",
            elapsed.as_nanos() / u128::from(n)
        );
    }
    Ok(())
}
