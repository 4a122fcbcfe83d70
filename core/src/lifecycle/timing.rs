//! The schedule arithmetic: what one answer says about time, what a fetched token's times mean
//! on this device, and when to renew it. Pure functions, tested on their own.
//!
//! Rules, each one a defect we met on real devices and backends:
//! - **Skew** (server minus device) comes from the answer when it can: a server time is used
//!   when it agrees with the token it came with (not before the token's `iat`, not after its
//!   expiry) and is within [`Policy::max_clock_skew`](super::Policy::max_clock_skew) of the
//!   device, a bound lifted when it lies inside the token's own life (`iat` to expiry): then the
//!   device clock is off, however far. The last such server time is remembered against the
//!   *elapsed* clock, which no wall-clock step moves, and stands in for an answer without one
//!   (unless the token's `iat` contradicts it). Without either, the token's `iat` can only prove
//!   the device *slow* (`iat` in the device's future); it never proves it fast, since a backend
//!   may hand out a token minted long ago. With no evidence the skew is 0. A skew is never kept
//!   as a difference to the device's wall clock, so NTP setting the phone right cannot leave a
//!   stale correction behind.
//! - **Start**: an `nbf` at most [`Policy::not_before_leeway`](super::Policy::not_before_leeway) ahead is valid now (a device a
//!   second slow and a JWT with `nbf = iat`); a later one is a scheduled token, held until then.
//! - **Renewal** is planned on the time *left* at receipt: never later than expiry minus the lead
//!   (capped at 19/20 of the time left), never sooner than 1/20 of the time left.

use std::time::Duration;

use crate::clock::millis;

/// Server time may be off by this much from a token's own times (whole-second claims, a
/// `Date` header read half a second late) before it counts as a contradiction: 2 s.
pub(crate) const SKEW_TOLERANCE_MS: i64 = 2_000;

/// What one answer says about time. All instants are unix ms; `now_wall` is the device's.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Evidence {
    /// Device wall clock when the answer arrived.
    pub(crate) now_wall: i64,
    /// The server's clock when it answered (`Date`, `serverTime`).
    pub(crate) server_time: Option<i64>,
    /// The server's clock now as worked out from an earlier answer's server time.
    pub(crate) remembered_server_time: Option<i64>,
    /// When the token was issued, server clock (its `iat`, or the source's `issuedAt`).
    pub(crate) issued_at: Option<i64>,
    /// The earliest absolute expiry the token or the source states, server clock.
    pub(crate) expires_at: Option<i64>,
    /// The token's `nbf`, server clock.
    pub(crate) not_before: Option<i64>,
}

/// Where the skew estimate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SkewBasis {
    /// No evidence of skew: the device clock is taken as right.
    None,
    /// The server's clock in the answer.
    ServerTime,
    /// An earlier answer's server time, carried forward on the elapsed clock.
    Remembered,
    /// The token's `iat` lies in the device's future: the device is at least that slow.
    IssuedAt,
}

/// Server minus device clock, in ms, and why; `ignored` explains a server time that was set
/// aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Skew {
    pub(crate) ms: i64,
    pub(crate) basis: SkewBasis,
    pub(crate) ignored: Option<&'static str>,
}

/// Estimates the skew from one answer (see the module docs).
pub(crate) fn estimate_skew(e: &Evidence, max_skew: Duration) -> Skew {
    let mut ignored = None;
    // A server time inside the token's own life (`iat` to expiry) agrees with the server that
    // minted it: then the device is off, however far.
    let within_token = |server: i64| {
        e.issued_at.zip(e.expires_at).is_some_and(|(iat, exp)| {
            server >= iat.saturating_sub(SKEW_TOLERANCE_MS) && server < exp
        })
    };
    let bounded = |skew: i64, server: i64| {
        skew.unsigned_abs() <= millis(max_skew).unsigned_abs() || within_token(server)
    };
    if let Some(server) = e.server_time {
        let skew = server.saturating_sub(e.now_wall);
        if !bounded(skew, server) {
            ignored = Some("it is further from the device clock than policy max_clock_skew");
        } else if e
            .issued_at
            .is_some_and(|iat| server < iat.saturating_sub(SKEW_TOLERANCE_MS))
        {
            ignored = Some("it is earlier than the token's own issue time");
        } else if e.expires_at.is_some_and(|exp| server >= exp) {
            // Whatever the device thinks: a server does not hand out a token it holds expired.
            ignored = Some("it says the token it came with had already expired");
        } else {
            // The server answered after it minted the token: its time was at least the token's
            // `iat`. A `Date` header has whole seconds and may be rendered a moment before the
            // token is minted (one second behind its `iat`).
            let server = e.issued_at.map_or(server, |iat| server.max(iat));
            return Skew {
                ms: server.saturating_sub(e.now_wall),
                basis: SkewBasis::ServerTime,
                ignored,
            };
        }
    }
    if let Some(server) = e.remembered_server_time {
        let skew = server.saturating_sub(e.now_wall);
        let contradicted = e
            .issued_at
            .is_some_and(|iat| server < iat.saturating_sub(SKEW_TOLERANCE_MS));
        if !contradicted && bounded(skew, server) {
            return Skew {
                ms: skew,
                basis: SkewBasis::Remembered,
                ignored,
            };
        }
    }
    if let Some(iat) = e.issued_at {
        let ahead = iat.saturating_sub(e.now_wall);
        if ahead > SKEW_TOLERANCE_MS && ahead.unsigned_abs() <= millis(max_skew).unsigned_abs() {
            return Skew {
                ms: ahead,
                basis: SkewBasis::IssuedAt,
                ignored,
            };
        }
    }
    Skew {
        ms: 0,
        basis: SkewBasis::None,
        ignored,
    }
}

/// A fetched token's times on the device, relative to its arrival (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Times {
    /// Time left until expiry, from arrival (may be ≤ 0: already expired).
    pub(crate) expires_in: i64,
    /// When it becomes valid, from arrival; 0 unless held as a scheduled token.
    pub(crate) starts_in: i64,
    /// Its whole lifetime as far as known (`iat` to expiry), at least the time it is valid.
    pub(crate) lifetime: i64,
}

/// Works out a token's times from the evidence, the skew, and the source's relative lifetime
/// (`expires_in`, counted from `fetch_started_ago` before arrival). `None` when nothing states
/// an expiry.
///
/// Never later than the truth: a server time was read when the server answered, up to the whole
/// fetch before arrival, and an `iat` is whole seconds, so an expiry worked out through either
/// is brought forward by that uncertainty.
pub(crate) fn token_times(
    e: &Evidence,
    skew: &Skew,
    expires_in: Option<Duration>,
    fetch_started_ago: i64,
    nbf_leeway: Duration,
) -> Option<Times> {
    let on_device = |server: i64| server.saturating_sub(skew.ms).saturating_sub(e.now_wall);
    let uncertainty = match skew.basis {
        SkewBasis::None => 0,
        SkewBasis::ServerTime | SkewBasis::Remembered => fetch_started_ago.max(0),
        SkewBasis::IssuedAt => fetch_started_ago.max(0).saturating_add(1_000),
    };
    let absolute = e
        .expires_at
        .map(|exp| on_device(exp).saturating_sub(uncertainty));
    let relative = expires_in.map(|d| millis(d).saturating_sub(fetch_started_ago));
    // Nor more life left than its whole life (`iat` to expiry): whatever the server time said.
    // An `iat` at or after the expiry is nonsense (milliseconds written as seconds): ignored.
    let whole = e
        .issued_at
        .zip(e.expires_at)
        .map(|(iat, exp)| exp.saturating_sub(iat))
        .filter(|whole| *whole > 0);
    let expires_in = match (absolute, relative) {
        (Some(a), Some(r)) => a.min(r),
        (a, r) => a.or(r)?,
    };
    let expires_in = whole.map_or(expires_in, |whole| expires_in.min(whole));
    let starts_in = e
        .not_before
        .map(on_device)
        .filter(|ahead| *ahead > millis(nbf_leeway))
        .unwrap_or(0);
    let issued = e
        .issued_at
        .map(on_device)
        .unwrap_or(starts_in)
        .min(starts_in);
    Some(Times {
        expires_in,
        starts_in,
        lifetime: expires_in.saturating_sub(issued),
    })
}

/// When to start renewing a token that is valid from `start` for `valid_for` ms (so it expires
/// at `start + valid_for`), given the effective `lead` and a `jitter` (both ms). Returns an
/// instant on the same clock as `start`.
///
/// ```text
/// renew_at = clamp(expiry − lead − jitter, start + valid_for/20, expiry − min(lead, 19/20 valid_for))
/// ```
pub(crate) fn renew_at(start: i64, valid_for: i64, lead: i64, jitter: i64) -> i64 {
    let valid_for = valid_for.max(0);
    let expiry = start.saturating_add(valid_for);
    let lead = lead.clamp(0, valid_for / 20 * 19);
    let earliest = start.saturating_add(valid_for / 20);
    let latest = expiry.saturating_sub(lead).max(earliest);
    expiry
        .saturating_sub(lead)
        .saturating_sub(jitter.max(0))
        .clamp(earliest, latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const DAY: Duration = Duration::from_secs(86_400);

    fn evidence(now: i64) -> Evidence {
        Evidence {
            now_wall: now,
            ..Evidence::default()
        }
    }

    #[test]
    fn server_time_gives_the_skew_when_it_agrees_with_the_token() {
        let e = Evidence {
            server_time: Some(10 * H + H),
            issued_at: Some(10 * H + H),
            expires_at: Some(12 * H),
            ..evidence(10 * H)
        };
        let skew = estimate_skew(&e, DAY);
        assert_eq!((skew.ms, skew.basis), (H, SkewBasis::ServerTime));
    }

    #[test]
    fn a_date_one_second_behind_the_tokens_iat_never_lengthens_its_life() {
        // `Date` rendered at second N (+ 500 ms, the best estimate), the 4 s token minted in
        // second N + 1 and received just after it: the token has at most 4 s left, not 4.5.
        let now = 10 * H + 1_003;
        let e = Evidence {
            server_time: Some(10 * H + 500),
            issued_at: Some(10 * H + 1_000),
            expires_at: Some(10 * H + 5_000),
            ..evidence(now)
        };
        let skew = estimate_skew(&e, DAY);
        assert_eq!((skew.ms, skew.basis), (-3, SkewBasis::ServerTime));
        let times = token_times(&e, &skew, None, 3, Duration::ZERO).unwrap();
        assert!(times.expires_in <= 4_000, "{times:?}");
    }

    #[test]
    fn a_token_never_has_more_life_left_than_its_whole_life() {
        // A device 1.5 s slow (within the tolerance, so no skew is learnt) and a 60 s token:
        // 60 s left at most, not 61.5.
        let e = Evidence {
            issued_at: Some(10 * H + 1_500),
            expires_at: Some(10 * H + 61_500),
            ..evidence(10 * H)
        };
        let skew = estimate_skew(&e, DAY);
        assert_eq!(skew.basis, SkewBasis::None);
        let times = token_times(&e, &skew, None, 0, Duration::ZERO).unwrap();
        assert_eq!(times.expires_in, 60_000);
        // Without an `iat` there is nothing to cap with.
        let relative = Evidence {
            issued_at: None,
            ..e
        };
        let times = token_times(&relative, &skew, None, 0, Duration::ZERO).unwrap();
        assert_eq!(times.expires_in, 61_500);
        // Nor with an `iat` after the expiry (milliseconds written as seconds).
        let nonsense = Evidence {
            issued_at: Some(1_000 * (10 * H + 1_500)),
            ..e
        };
        let skew = estimate_skew(&nonsense, DAY);
        let times = token_times(&nonsense, &skew, None, 0, Duration::ZERO).unwrap();
        assert_eq!(times.expires_in, 61_500);
    }

    #[test]
    fn server_time_earlier_than_the_tokens_issue_time_is_ignored() {
        // A `Date` an hour behind (a stale cache, a wrong server clock); the token was minted now.
        let e = Evidence {
            server_time: Some(10 * H - H),
            issued_at: Some(10 * H),
            expires_at: Some(11 * H),
            ..evidence(10 * H)
        };
        let skew = estimate_skew(&e, DAY);
        assert_eq!((skew.ms, skew.basis), (0, SkewBasis::None));
        assert!(skew.ignored.is_some());
    }

    #[test]
    fn server_time_past_the_tokens_expiry_is_ignored_whatever_the_device_says() {
        let e = Evidence {
            server_time: Some(10 * H + H),
            expires_at: Some(10 * H + H),
            ..evidence(10 * H)
        };
        assert_eq!(estimate_skew(&e, DAY).basis, SkewBasis::None);
        // A device an hour fast sees the token expired too: the server time is still a lie.
        let fast = Evidence {
            now_wall: 10 * H + 2 * H,
            ..e
        };
        assert_eq!(estimate_skew(&fast, DAY).basis, SkewBasis::None);
    }

    #[test]
    fn server_time_beyond_the_bound_is_ignored() {
        let e = Evidence {
            server_time: Some(10 * H + 30 * H),
            ..evidence(10 * H)
        };
        let skew = estimate_skew(&e, DAY);
        assert_eq!(skew.basis, SkewBasis::None);
        assert!(skew.ignored.unwrap().contains("max_clock_skew"));
    }

    #[test]
    fn a_remembered_server_time_stands_in_unless_the_token_contradicts_it() {
        // The device is an hour fast; this answer has no `Date`, an earlier one did.
        let e = Evidence {
            remembered_server_time: Some(10 * H - H),
            issued_at: Some(10 * H - H),
            ..evidence(10 * H)
        };
        let skew = estimate_skew(&e, DAY);
        assert_eq!((skew.ms, skew.basis), (-H, SkewBasis::Remembered));
        // A token issued after the remembered "now" proves the memory wrong.
        let wrong = Evidence {
            issued_at: Some(10 * H),
            ..e
        };
        assert_eq!(estimate_skew(&wrong, DAY).basis, SkewBasis::None);
    }

    #[test]
    fn iat_proves_a_slow_device_but_never_a_fast_one() {
        let slow = Evidence {
            issued_at: Some(10 * H + H),
            ..evidence(10 * H)
        };
        assert_eq!(estimate_skew(&slow, DAY).ms, H);
        // Minted 30 min ago (a caching backend): no evidence the device is fast.
        let cached = Evidence {
            issued_at: Some(10 * H - H / 2),
            ..evidence(10 * H)
        };
        assert_eq!(estimate_skew(&cached, DAY).ms, 0);
        // A second or two ahead is within the tolerance of whole-second claims.
        let close = Evidence {
            issued_at: Some(10 * H + 2_000),
            ..evidence(10 * H)
        };
        assert_eq!(estimate_skew(&close, DAY).ms, 0);
    }

    #[test]
    fn times_take_the_earliest_expiry_and_hold_only_distant_starts() {
        let e = Evidence {
            expires_at: Some(10 * H + 600_000),
            not_before: Some(10 * H + 2_000),
            issued_at: Some(10 * H + 2_000),
            ..evidence(10 * H)
        };
        let none = Skew {
            ms: 0,
            basis: SkewBasis::None,
            ignored: None,
        };
        let t = token_times(
            &e,
            &none,
            Some(Duration::from_secs(300)),
            100,
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(t.expires_in, 299_900);
        assert_eq!(t.starts_in, 0, "nbf 2 s ahead is within the leeway");
        let meeting = Evidence {
            not_before: Some(10 * H + H),
            expires_at: Some(12 * H),
            ..evidence(10 * H)
        };
        let t = token_times(&meeting, &none, None, 0, Duration::from_secs(60)).unwrap();
        assert_eq!((t.starts_in, t.expires_in, t.lifetime), (H, 2 * H, H));
        assert_eq!(
            token_times(&evidence(0), &none, None, 0, Duration::ZERO),
            None
        );
        // Through a server time read up to 300 ms before arrival: 300 ms earlier.
        let dated = Evidence {
            expires_at: Some(10 * H + 60_000),
            server_time: Some(10 * H),
            ..evidence(10 * H)
        };
        let skew = estimate_skew(&dated, DAY);
        let t = token_times(&dated, &skew, None, 300, Duration::ZERO).unwrap();
        assert_eq!(t.expires_in, 59_700);
    }

    #[test]
    fn renewal_of_a_token_served_late_in_its_life_lands_before_expiry() {
        // A 24 h token with 1 h left, lead 30 s, 3 s jitter: 30–33 s before expiry.
        let at = renew_at(0, H, 30_000, 3_000);
        assert_eq!(at, H - 33_000);
        // Whatever the lead, never later than expiry − lead and never before 1/20 of the time left.
        assert_eq!(renew_at(0, 2_700, 5_000, 500), 135);
        assert_eq!(renew_at(0, 2_700, 1_000, 100), 1_600);
        assert_eq!(renew_at(1_000, 0, 30_000, 0), 1_000);
    }
}
