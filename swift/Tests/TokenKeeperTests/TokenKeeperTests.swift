// XCTest suite for the Swift package: `swift test` on a Mac after scripts/build-xcframework.sh
// (TOKENKEEPER_LOCAL_XCFRAMEWORK=1), or on Linux against libtokenkeeper_uniffi.so (swift/README.md).
// Not compiled or run here (no Swift toolchain on this repository's machines): tree-sitter
// parses it (scripts/check-syntax.sh). The same behaviours run for real in the Python suite
// (python/tests) against the same library.
import XCTest
@testable import TokenKeeper

private let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"

private final class CountingSource: TokenSource, @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    let delayNanos: UInt64
    let lifetime: TimeInterval
    let distinct: Bool

    /// `distinct`: every fetch returns a new opaque token (`tok-1`, `tok-2`, …) instead of `jwt`.
    init(delayNanos: UInt64 = 0, lifetime: TimeInterval = 600, distinct: Bool = false) {
        self.delayNanos = delayNanos
        self.lifetime = lifetime
        self.distinct = distinct
    }

    var calls: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }

    func fetch(request: FetchRequest) async throws -> FetchedToken {
        lock.lock()
        count += 1
        let n = count
        lock.unlock()
        if delayNanos > 0 { try await Task.sleep(nanoseconds: delayNanos) }
        return FetchedToken(token: Secret(value: distinct ? "tok-\(n)" : jwt), expiresIn: lifetime)
    }
}

private final class MemoryStore: CredentialStore, @unchecked Sendable {
    private let lock = NSLock()
    var values: [String: String] = [:]
    func load(key: String) throws -> Secret? {
        lock.lock(); defer { lock.unlock() }
        return values[key].map { Secret(value: $0) }
    }
    func save(key: String, value: Secret) throws { lock.lock(); values[key] = value.expose(); lock.unlock() }
    func delete(key: String) throws { lock.lock(); values[key] = nil; lock.unlock() }
}

/// An engine that behaves as Agora's does: it holds the token it was given, says "will expire"
/// `lead` before that token's expiry (naming it) and "request token" at expiry (naming none),
/// and counts the time it holds an expired token.
private final class FakeEngine: TokenSink, @unchecked Sendable {
    private let lock = NSLock()
    private let queue = DispatchQueue(label: "fake-engine")
    private let lead: TimeInterval
    private var refuse: Int
    private var held: IssuedToken?
    private var timers: [DispatchWorkItem] = []
    private(set) var applied: [String] = []
    private(set) var refused = 0
    private(set) var expiredTime: TimeInterval = 0
    weak var session: Session?

    init(lead: TimeInterval, refuseFirst: Int = 0) {
        self.lead = lead
        self.refuse = refuseFirst
    }

    /// `joinChannel(byToken:…)`.
    func join(_ token: IssuedToken) {
        lock.lock()
        defer { lock.unlock() }
        hold(token)
    }

    func apply(token: IssuedToken) throws {
        lock.lock()
        defer { lock.unlock() }
        if refuse > 0 {
            refuse -= 1
            refused += 1
            throw TokenKeeperError.HostCallback(reason: "ERR_NOT_READY (-7)")
        }
        hold(token)
    }

    /// Stops the callbacks and counts the expired time up to now.
    func leave() {
        lock.lock()
        defer { lock.unlock() }
        countExpired(until: Date())
        timers.forEach { $0.cancel() }
        held = nil
    }

    private func hold(_ token: IssuedToken) {
        countExpired(until: Date())
        applied.append(token.token.expose())
        held = token
        timers.forEach { $0.cancel() }
        let text = token.token.expose()
        let willExpire = DispatchWorkItem { [weak self] in self?.session?.onTokenWillExpire(token: text) }
        let expired = DispatchWorkItem { [weak self] in self?.session?.onTokenExpired() }
        timers = [willExpire, expired]
        let now = Date()
        queue.asyncAfter(deadline: .now() + max(0, token.expiresAt.addingTimeInterval(-lead).timeIntervalSince(now)), execute: willExpire)
        queue.asyncAfter(deadline: .now() + max(0, token.expiresAt.timeIntervalSince(now)), execute: expired)
    }

    private func countExpired(until now: Date) {
        if let held = held, now > held.expiresAt {
            expiredTime += now.timeIntervalSince(held.expiresAt)
        }
    }
}

final class TokenKeeperTests: XCTestCase {
    private func config(policy: Policy? = nil) -> SessionConfig {
        SessionConfig(spec: SessionSpec(channel: "room-1", user: "u1"), policy: policy)
    }

    func testPolicyLeavesEveryFieldToTheCoreAndDefaultPolicyShowsTheValues() {
        let unset = Policy()
        XCTAssertNil(unset.renewLead)
        XCTAssertNil(unset.tokenWait)
        let defaults = defaultPolicy()
        XCTAssertEqual(defaults.renewLead, 30)
        XCTAssertEqual(defaults.renewJitter, 3)
        XCTAssertEqual(defaults.fetchTimeout, 10)
        XCTAssertEqual(defaults.tokenWait, 30)
        XCTAssertEqual(defaults.adaptiveLead, true)
    }

    func testInspectDecodesAJwt() throws {
        let info = try inspect(token: jwt)
        XCTAssertEqual(info.format, .jwt)
        XCTAssertEqual(info.expiresAt, Date(timeIntervalSince1970: 9_999_999_999))
    }

    func testFirstTokenFromASwiftSource() async throws {
        let keeper = try Keeper()
        let source = CountingSource()
        let session = keeper.openSession(config: config(), source: source)
        let issued = try await session.token()
        XCTAssertEqual(issued.token.expose(), jwt)
        XCTAssertEqual(issued.reason, .initial)
        XCTAssertEqual(issued.expiresAt.timeIntervalSince(issued.receivedAt), 600, accuracy: 0.001)
        XCTAssertEqual(session.current(), issued)
        XCTAssertEqual(source.calls, 1)
        session.close()
    }

    func testRecordsPrintSecretsAsTheirLengthOnly() async throws {
        let secret = Secret(value: jwt)
        XCTAssertEqual(secret.description, "Secret(len=\(jwt.utf8.count))")
        XCTAssertEqual(secret.debugDescription, "Secret(len=\(jwt.utf8.count))")
        XCTAssertEqual(secret.expose(), jwt)
        XCTAssertEqual(secret.len(), UInt64(jwt.utf8.count))
        XCTAssertEqual(secret, Secret(value: jwt))
        let keeper = try Keeper()
        let session = keeper.openSession(config: config(), source: CountingSource())
        let issued = try await session.token()
        let fetched = FetchedToken(token: Secret(value: jwt), rotatedCredentials: Secret(value: "refresh-SECRET"))
        let http = HttpSourceConfig(endpoint: "https://api.example.com/token", bearer: Secret(value: "bearer-SECRET"),
                                    headers: ["X-Api-Key": Secret(value: "key-SECRET")])
        let printed = [
            "\(issued)", String(describing: issued), String(reflecting: issued),
            String(describing: session.current()), "\(fetched)", String(reflecting: fetched), "\(http)",
        ]
        for text in printed {
            XCTAssertFalse(text.contains(jwt) || text.contains("c2lnbmF0dXJl"), "a token leaked: \(text)")
            XCTAssertFalse(text.contains("SECRET"), "a secret leaked: \(text)")
        }
        XCTAssertTrue("\(issued)".contains("Secret(len=\(jwt.utf8.count))"), "\(issued)")
        session.close()
    }

    func testHundredConcurrentTasksShareOneFetch() async throws {
        let keeper = try Keeper()
        let source = CountingSource(delayNanos: 200_000_000)
        let session = keeper.openSession(config: config(), source: source)
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<100 { group.addTask { try await session.token().token.expose() } }
            var all = Set<String>()
            for try await t in group { all.insert(t) }
            return all
        }
        XCTAssertEqual(tokens, [jwt])
        XCTAssertEqual(source.calls, 1)
        session.close()
    }

    func testReauthRequiredFromTheSourceStopsTheSessionAndTheStatusSaysWhy() async throws {
        let keeper = try Keeper()
        let source = ClosureTokenSource { _ in
            throw errorForHttpStatus(status: 401, retryAfter: nil, message: "expired")
        }
        let session = keeper.openSession(config: config(), source: source)
        do {
            _ = try await session.token()
            XCTFail("expected ReauthRequired")
        } catch TokenKeeperError.ReauthRequired(let reason) {
            XCTAssertTrue(reason.contains("401"))
        }
        let status = session.status()
        XCTAssertEqual(status.state, .failed)
        guard case .ReauthRequired? = status.error else { return XCTFail("\(status)") }
        session.close()
    }

    func testEventsStreamFinishesAfterClosed() async throws {
        let keeper = try Keeper()
        let session = keeper.openSession(config: config(), source: CountingSource())
        let events = session.events
        _ = try await session.token()
        session.close()
        var kinds: [EventKind] = []
        for await e in events { kinds.append(e.kind) }
        guard case .issued(let reason, _, _, _)? = kinds.first else { return XCTFail("\(kinds)") }
        XCTAssertEqual(reason, .initial)
        XCTAssertEqual(kinds.last, .closed)
    }

    func testStatusUpdatesStartWithTheCurrentStatusAndFinishAfterClosed() async throws {
        let keeper = try Keeper()
        let session = keeper.openSession(config: config(), source: CountingSource())
        let issued = try await session.token()
        let updates = session.statusUpdates
        var states: [SessionState] = []
        for await status in updates {
            states.append(status.state)
            if states.count == 1 {
                XCTAssertEqual(status, SessionStatus(state: .valid, expiresAt: issued.expiresAt, error: nil))
                session.close()
            }
        }
        XCTAssertEqual(states.first, .valid)
        XCTAssertEqual(states.last, .closed)
    }

    func testRotatedCredentialsReachTheHostStore() async throws {
        let store = MemoryStore()
        let keeper = try Keeper(credentialStore: store)
        let source = ClosureTokenSource { _ in
            FetchedToken(token: Secret(value: jwt), rotatedCredentials: Secret(value: "refresh-1"))
        }
        let cfg = SessionConfig(spec: SessionSpec(channel: "room-1", user: "u1"), credentialsKey: "cred:u1")
        let session = keeper.openSession(config: cfg, source: source)
        _ = try await session.token()
        XCTAssertEqual(store.values["cred:u1"], "refresh-1")
        session.close()
    }

    func testTokenExpiredFetchesAnEmergencyTokenAndAStaleReportChangesNothing() async throws {
        let keeper = try Keeper()
        let source = CountingSource(distinct: true)
        let session = keeper.openSession(config: config(), source: source)
        let first = try await session.token()
        let fresh = try await session.tokenExpired(token: first.token)
        XCTAssertEqual(fresh.reason, .emergency)
        XCTAssertEqual(fresh.token.expose(), "tok-2")
        let again = try await session.tokenExpired(token: first.token) // about the old token
        XCTAssertEqual(again, fresh)
        XCTAssertEqual(source.calls, 2)
        session.close()
    }

    /// Short tokens in real time (3 s, engine lead 1 s) for about 8 s: every token reaches the
    /// engine once, in order, never expired, and the engine's callbacks add no fetch.
    func testTheSinkHandsEveryTokenToTheEngineOnceInOrderAndNeverExpired() async throws {
        let keeper = try Keeper(policy: Policy(renewLead: 1, renewJitter: 0))
        let source = CountingSource(lifetime: 3, distinct: true)
        let engine = FakeEngine(lead: 1, refuseFirst: 1)
        let session = keeper.openSession(config: config(), source: source, sink: engine)
        engine.session = session
        engine.join(try await session.token())
        try await Task.sleep(nanoseconds: 8_000_000_000)
        engine.leave()
        let counters = session.counters()
        session.close()
        XCTAssertGreaterThanOrEqual(counters.renewals, 3)
        XCTAssertEqual(engine.applied, (1...source.calls).map { "tok-\($0)" }, "every token once, in order")
        XCTAssertEqual(engine.refused, 1)
        XCTAssertEqual(counters.applyFailures, 1)
        XCTAssertEqual(counters.applies, counters.renewals)
        XCTAssertEqual(engine.expiredTime, 0)
        XCTAssertEqual(counters.fetches - counters.failures, counters.renewals + 1, "one fetch per cycle")
    }

    func testAListenerThatThrowsKeepsReceivingAndTheSessionSurvives() async throws {
        let keeper = try Keeper()
        let source = CountingSource(distinct: true)
        let session = keeper.openSession(config: config(), source: source)
        let calls = Counter()
        let registration = session.addListener { _ in
            calls.increment()
            throw TokenKeeperError.HostCallback(reason: "listener bug")
        }
        _ = try await session.token()
        let renewed = try await session.renewToken()
        // renewToken() can return before its .issued event is queued for the listeners, so
        // flushListeners alone may not cover it: wait for it (both issued events), then flush.
        for _ in 0..<500 where calls.value < 2 {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        XCTAssertTrue(keeper.flushListeners(timeout: 5))
        XCTAssertEqual(renewed.token.expose(), "tok-2")
        XCTAssertGreaterThanOrEqual(calls.value, 2)
        XCTAssertEqual(session.state(), .valid)
        XCTAssertTrue(registration.remove())
        session.close()
    }

    func testLifecycleSignalsStartAndStop() throws {
        let signals = LifecycleSignals(keeper: try Keeper())
        XCTAssertFalse(signals.isRunning)
        signals.start()
        signals.start()
        XCTAssertTrue(signals.isRunning)
        signals.stop()
        XCTAssertFalse(signals.isRunning)
    }
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }
    func increment() {
        lock.lock()
        count += 1
        lock.unlock()
    }
}
