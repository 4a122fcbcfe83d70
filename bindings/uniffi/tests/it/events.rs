//! Event listener and pull subscription.

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::executor::block_on;
use tokenkeeper_uniffi::{
    EventKind, EventListener, FetchReason, FetchRequest, FetchedToken, Keeper, Secret,
    SessionEvent, TokenKeeperError, TokenSource,
};

use crate::facade::{Counting, config};

#[derive(Default)]
struct Recorder(Mutex<Vec<SessionEvent>>);

impl EventListener for Recorder {
    fn on_event(&self, event: SessionEvent) -> Result<(), TokenKeeperError> {
        self.0.lock().unwrap().push(event);
        Ok(())
    }
}

#[test]
fn subscription_yields_issued_then_ends_on_close() {
    let keeper = Keeper::new(None, None).unwrap();
    let session = keeper.open_session(config(), Arc::new(Counting::default()), None);
    let sub = session.subscribe();
    block_on(session.token()).unwrap();
    let first = block_on(sub.clone().next()).unwrap().expect("an event");
    assert_eq!(first.session_id, session.id());
    assert!(
        matches!(
            first.kind,
            EventKind::Issued {
                reason: FetchReason::Initial,
                ..
            }
        ),
        "{first:?}"
    );
    session.close();
    let mut rest = Vec::new();
    while let Some(e) = block_on(sub.clone().next()).unwrap() {
        rest.push(e.kind);
    }
    assert_eq!(rest.last(), Some(&EventKind::Closed));
}

#[test]
fn cancel_ends_a_pending_next() {
    let keeper = Keeper::new(None, None).unwrap();
    let session = keeper.open_session(config(), Arc::new(Counting::default()), None);
    let sub = session.subscribe();
    let waiting = std::thread::spawn({
        let sub = sub.clone();
        move || block_on(sub.next())
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    sub.cancel();
    assert_eq!(waiting.join().unwrap().unwrap(), None);
    assert_eq!(block_on(sub.clone().next()).unwrap(), None);
}

#[test]
fn listener_sees_events_until_removed() {
    let keeper = Keeper::new(None, None).unwrap();
    let session = keeper.open_session(config(), Arc::new(Counting::default()), None);
    let recorder = Arc::new(Recorder::default());
    let registration = session.clone().add_listener(recorder.clone());
    block_on(session.token()).unwrap();
    assert!(
        keeper.flush_listeners(std::time::Duration::from_secs(5)),
        "listeners run on the event thread"
    );
    assert!(registration.remove());
    assert!(
        !registration.remove(),
        "second remove reports nothing removed"
    );
    let seen = recorder.0.lock().unwrap().len();
    session.close();
    let events = recorder.0.lock().unwrap();
    assert_eq!(events.len(), seen, "no events after removal");
    assert!(
        matches!(events[0].kind, EventKind::Issued { .. }),
        "{events:?}"
    );
}

#[test]
fn dropping_a_pending_next_aborts_its_task_and_frees_the_stream() {
    let keeper = Keeper::new(None, None).unwrap();
    let session = keeper.open_session(config(), Arc::new(Counting::default()), None);
    let sub = session.subscribe();
    {
        // Poll once so the work is spawned, then drop it: what a cancelled coroutine does.
        let mut pending = Box::pin(sub.clone().next());
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(pending.as_mut().poll(&mut cx).is_pending());
    }
    // The aborted task released the stream: the next reader gets the next event.
    block_on(session.token()).unwrap();
    let event = block_on(sub.clone().next()).unwrap().expect("an event");
    assert!(matches!(event.kind, EventKind::Issued { .. }), "{event:?}");
}

/// A Kotlin/Swift/Python listener that throws: the exception arrives as an error (never a
/// panic, which aborts a mobile app) and the session goes on.
struct Throws(Mutex<u32>);

impl EventListener for Throws {
    fn on_event(&self, _: SessionEvent) -> Result<(), TokenKeeperError> {
        *self.0.lock().unwrap() += 1;
        Err(TokenKeeperError::HostCallback {
            reason: "NullPointerException in onEvent".into(),
        })
    }
}

/// Distinct opaque tokens: `tok-1`, `tok-2`, …
#[derive(Default)]
struct Numbered(Mutex<u32>);

#[async_trait::async_trait]
impl TokenSource for Numbered {
    async fn fetch(&self, _: FetchRequest) -> Result<FetchedToken, TokenKeeperError> {
        let mut n = self.0.lock().unwrap();
        *n += 1;
        Ok(FetchedToken {
            token: Secret::new(format!("tok-{n}")),
            expires_at: None,
            expires_in: Some(std::time::Duration::from_millis(600_000)),
            issued_at: None,
            server_time: None,
            rotated_credentials: None,
        })
    }
}

#[test]
fn a_listener_that_throws_never_stops_the_session() {
    let keeper = Keeper::new(None, None).unwrap();
    let session = keeper.open_session(config(), Arc::new(Numbered::default()), None);
    let throws = Arc::new(Throws(Mutex::new(0)));
    session.clone().add_listener(throws.clone());
    let first = block_on(session.token()).unwrap();
    let renewed = block_on(session.renew_token()).unwrap();
    assert_ne!(first.token.expose(), renewed.token.expose());
    assert!(keeper.flush_listeners(std::time::Duration::from_secs(5)));
    assert!(*throws.0.lock().unwrap() >= 2, "it kept being called");
    assert_eq!(session.counters().driver_restarts, 0);
}
