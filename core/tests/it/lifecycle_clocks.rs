//! Clocks and server time, in virtual time: tokens served late in their life, answers with and
//! without server time, lying `Date` headers, clocks set back, sleeps during retries.

use std::time::Duration;

use serde_json::json;
use tokenkeeper::clock::{Clock, ManualClock};
use tokenkeeper::lifecycle::{EventKind, Policy};
use tokenkeeper::source::{FetchedToken, SourceError, Token};

use crate::lifecycle_support::{Reply, Rig, T0, jwt, policy, token, uncovered_ms};

const H: i64 = 3_600_000;
const HOUR: Duration = Duration::from_secs(3600);

fn expired_events(rig: &Rig) -> usize {
    rig.count(|k| matches!(k, EventKind::Expired { .. }))
}

/// A JWT with the given times (unix seconds) and a serial number so each is distinct.
fn jwt_token(n: u64, iat: i64, nbf: Option<i64>, exp: i64) -> FetchedToken {
    let mut claims = json!({"sub": "1001", "n": n, "iat": iat, "exp": exp});
    if let Some(nbf) = nbf {
        claims["nbf"] = json!(nbf);
    }
    FetchedToken::new(Token::new(jwt(claims)))
}

/// #1: a caching backend serves a 24 h token with 1 h left.
#[tokio::test(start_paused = true)]
async fn a_token_served_late_in_its_life_is_renewed_before_it_expires() {
    let rig = Rig::new(|c| {
        let now = c.at_ms / 1000;
        Reply::Ok(jwt_token(c.n, now - 23 * 3600, None, now + 3600))
    });
    let first = rig.session.token().await.unwrap();
    assert_eq!(first.expires_at_ms, T0 + H);
    rig.run_for(HOUR).await;
    let calls = rig.source.calls();
    assert!(calls.len() >= 2, "renewed within the hour");
    let renewed_at = calls[1].at_ms - T0;
    assert!(
        (H - 33_000..=H - 30_000).contains(&renewed_at),
        "renewal {} s before expiry",
        (H - renewed_at) / 1000
    );
    assert_eq!(expired_events(&rig), 0);
}

/// #2: no server time in the answer; the token was minted 30 minutes ago.
#[tokio::test(start_paused = true)]
async fn an_old_tokens_iat_never_extends_its_life_when_the_answer_has_no_server_time() {
    let rig = Rig::new(|c| {
        let now = c.at_ms / 1000;
        Reply::Ok(jwt_token(c.n, now - 1800, None, now + 1800))
    });
    let first = rig.session.token().await.unwrap();
    assert_eq!(
        first.expires_at_ms,
        T0 + H / 2,
        "expires when the token says"
    );
    rig.run_for(HOUR).await;
    assert_eq!(expired_events(&rig), 0);
    assert_eq!(uncovered_ms(&rig.events(), T0, T0 + H), 0);
}

/// #3: the device was an hour slow, then NTP fixed it; later answers carry no server time.
#[tokio::test(start_paused = true)]
async fn a_skew_learnt_once_is_forgotten_when_later_answers_show_none() {
    let clock = ManualClock::new(T0);
    clock.shift_wall_ms(-H); // an hour slow
    let rig = Rig::with(clock.clone(), policy(), |c| {
        if c.n == 1 {
            let truth = c.at_ms + H;
            let t = jwt_token(c.n, truth / 1000, None, truth / 1000 + 3600);
            Reply::Ok(t.with_server_time_ms(truth))
        } else {
            let now = c.at_ms / 1000;
            Reply::Ok(jwt_token(c.n, now, None, now + 3600))
        }
    });
    let first = rig.session.token().await.unwrap();
    assert_eq!(first.expires_at_ms, clock.now_unix_ms() + H);
    clock.shift_wall_ms(H); // NTP fixes the phone
    let renewed = rig
        .session
        .renew_token()
        .await
        .expect("not refused as expired");
    assert_eq!(renewed.expires_at_ms, clock.now_unix_ms() + H);
    assert_eq!(rig.source.call_count(), 2);
}

/// #4: the device is 1.5 s slow and the JWT says `nbf = iat` (Digital Samba room tokens do).
#[tokio::test(start_paused = true)]
async fn a_jwt_with_nbf_equal_to_iat_is_valid_at_once_on_a_slightly_slow_device() {
    let clock = ManualClock::new(T0);
    clock.shift_wall_ms(-1_500);
    let rig = Rig::with(clock, policy(), |c| {
        let truth = (c.at_ms + 1_500) / 1000;
        Reply::Ok(jwt_token(c.n, truth, Some(truth), truth + 3600))
    });
    let first = rig.session.token().await.expect("valid, not NotYetValid");
    assert!(rig.session.current().is_some());
    assert_eq!(first.token, rig.session.current().unwrap().token);
}

/// #5: the renewal is a token that starts five minutes later.
#[tokio::test(start_paused = true)]
async fn a_renewal_that_starts_later_keeps_the_current_token_until_its_start() {
    let policy = Policy {
        renew_lead: Duration::from_secs(600),
        ..policy()
    };
    let rig = Rig::with(ManualClock::new(T0), policy, |c| {
        if c.n == 1 {
            token(1, 3600)
        } else {
            let now = c.at_ms / 1000;
            Reply::Ok(jwt_token(c.n, now, Some(now + 300), now + 300 + 3600))
        }
    });
    let first = rig.session.token().await.unwrap();
    rig.run_for(Duration::from_secs(50 * 60 + 1)).await;
    assert_eq!(rig.source.call_count(), 2, "renewed 10 min before expiry");
    assert_eq!(
        rig.session.current().map(|t| t.token),
        Some(first.token.clone()),
        "the current token is still served"
    );
    rig.run_for(Duration::from_secs(300)).await;
    let next = rig.session.current().expect("the successor took over");
    assert_ne!(next.token, first.token);
    assert_eq!(expired_events(&rig), 0);
    assert_eq!(
        rig.source.call_count(),
        2,
        "no refetch while waiting for the start"
    );
    assert_eq!(rig.count(|k| matches!(k, EventKind::BecameValid { .. })), 1);
}

/// #6: NTP sets a fast wall clock back an hour.
#[tokio::test(start_paused = true)]
async fn a_wall_clock_set_back_an_hour_neither_delays_the_renewal_nor_serves_an_expired_token() {
    let rig = Rig::new(|c| token(c.n, 3600));
    let first = rig.session.token().await.unwrap();
    rig.run_for(Duration::from_secs(600)).await;
    rig.clock.shift_wall_ms(-H);
    rig.run_for(Duration::from_secs(51 * 60)).await; // an hour and a minute after issue
    let calls = rig.source.calls();
    assert_eq!(calls.len(), 2);
    let renewed_after = calls[1].at_ms + H - T0;
    assert!(
        (H - 33_000..=H - 30_000).contains(&renewed_after),
        "renewed {renewed_after} ms after issue"
    );
    let now = rig.session.current().expect("a valid token");
    assert_ne!(now.token, first.token);
    assert_eq!(expired_events(&rig), 0);
}

/// #7: a `Date` header an hour behind the truth, on a fresh JWT.
#[tokio::test(start_paused = true)]
async fn a_server_time_earlier_than_the_tokens_issue_time_is_not_believed() {
    let rig = Rig::new(|c| {
        let now = c.at_ms / 1000;
        Reply::Ok(jwt_token(c.n, now, None, now + 3600).with_server_time_ms(c.at_ms - H))
    });
    let first = rig.session.token().await.unwrap();
    assert_eq!(
        first.expires_at_ms,
        T0 + H,
        "not served an hour past its expiry"
    );
}

/// #7: a `Date` header an hour ahead, which would make every token look expired on arrival.
#[tokio::test(start_paused = true)]
async fn a_server_time_past_the_tokens_expiry_is_not_believed() {
    let rig = Rig::new(|c| {
        let now = c.at_ms / 1000;
        Reply::Ok(jwt_token(c.n, now, None, now + 3600).with_server_time_ms(c.at_ms + H))
    });
    let first = rig.session.token().await.expect("not refused as expired");
    assert_eq!(first.expires_at_ms, T0 + H);
    assert_eq!(rig.source.call_count(), 1);
}

/// #7: a server time days off is outside any plausible device skew.
#[tokio::test(start_paused = true)]
async fn a_server_time_beyond_the_skew_bound_is_not_believed() {
    let rig = Rig::new(|c| {
        Reply::Ok(
            FetchedToken::new(Token::new(format!("tok-{}", c.n)))
                .with_expires_at_ms(c.at_ms + 3 * 24 * H + H)
                .with_server_time_ms(c.at_ms + 3 * 24 * H),
        )
    });
    let first = rig.session.token().await.unwrap();
    // Without the bound this would be one hour; the device clock's reading is kept.
    assert_eq!(first.expires_at_ms, T0 + 3 * 24 * H + H);
}

/// #8: the device sleeps an hour while a renewal waits to retry.
#[tokio::test(start_paused = true)]
async fn a_sleep_during_a_renewal_retry_does_not_count_as_renewal_time() {
    let rig = Rig::new(|c| {
        if c.n == 2 {
            Reply::Err(SourceError::from_http_status(503, None, "url", "busy"))
        } else {
            token(c.n, 60)
        }
    });
    rig.session.token().await.unwrap();
    while rig.count(|k| matches!(k, EventKind::FetchFailed { .. })) == 0 {
        rig.run_for(Duration::from_millis(50)).await;
    }
    rig.clock.jump(HOUR);
    rig.run_for(Duration::from_millis(1)).await;
    let woke = rig.source.call_count();
    rig.run_for(Duration::from_secs(120)).await;
    let fetches = rig.source.call_count() - woke;
    // 60 s tokens renew at half-life: about 4 renewals in two minutes, not one every 3 s.
    assert!(
        (3..=6).contains(&fetches),
        "{fetches} fetches in the 2 min after waking"
    );
}

/// A shared HTTP cache (a CDN in front of the token endpoint) answers with a response it
/// stored 50 minutes ago: its `Date` is the origin's, 50 minutes old, and `Age: 3000` says so
/// (RFC 9111 §5.1). The token in it was minted then too, so `Date` and `iat` agree; only `Age`
/// tells that the server's clock is not 50 minutes behind. The token expires in 10 minutes.
#[cfg(feature = "http")]
#[tokio::test]
async fn a_cached_answers_age_is_counted_in_its_server_time() {
    use std::sync::Arc;
    use tokenkeeper::lifecycle::{Keeper, SessionConfig};
    use tokenkeeper::source::SessionSpec;
    use tokenkeeper::sources::HttpSource;

    let minted = T0 / 1000 - 3000;
    let body = json!({ "token": jwt(json!({"sub": "1001", "iat": minted, "exp": minted + 3600})) });
    let (port, _) = crate::http_support::serve_with_headers(move |_| {
        (
            200,
            vec![
                // T0 − 3000 s.
                ("date".into(), "Tue, 14 Nov 2023 21:23:20 GMT".into()),
                ("age".into(), "3000".into()),
            ],
            body.to_string(),
        )
    })
    .await;
    let clock = ManualClock::new(T0);
    let source = HttpSource::builder(&format!("http://127.0.0.1:{port}/rtc/token"))
        .clock(Arc::new(clock.clone()))
        .client(reqwest::Client::builder().no_proxy().build().unwrap())
        .build()
        .unwrap();
    let keeper = Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .build()
        .unwrap();
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001")),
        Arc::new(source),
    );
    let t = session.token().await.unwrap();
    let left = t.expires_at_ms - clock.now_unix_ms();
    assert!(
        (595_000..=600_000).contains(&left),
        "expires in {} s, not 10 min",
        left / 1000
    );
}

/// A phone whose date is days off (set by hand, or no network time since a battery swap):
/// the server's `Date` agrees with the token it came with, so it is the device that is wrong,
/// however far off. Three days slow: the token must not be kept three days past its expiry.
/// Three days fast: it must not be refused as long expired.
#[tokio::test(start_paused = true)]
async fn a_device_clock_days_off_is_corrected_by_a_server_time_the_token_agrees_with() {
    for off in [-72 * H, 72 * H] {
        let clock = ManualClock::new(T0);
        clock.shift_wall_ms(off);
        let rig = Rig::with(clock, policy(), move |c| {
            let server = c.at_ms - off;
            let now = server / 1000;
            Reply::Ok(jwt_token(c.n, now, None, now + 3600).with_server_time_ms(server))
        });
        let first = rig.session.token().await.expect("not refused as expired");
        let left = first.expires_at_ms - rig.clock.now_unix_ms();
        assert!(
            (H - 2_000..=H).contains(&left),
            "{off}: expires in {left} ms"
        );
        rig.run_for(2 * HOUR).await;
        assert_eq!(expired_events(&rig), 0, "{off}");
        assert_eq!(rig.source.call_count(), 3, "{off}: renewed each hour");
    }
}
