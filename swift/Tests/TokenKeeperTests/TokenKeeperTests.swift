// XCTest suite for the Swift package: `swift test` on a Mac after scripts/build-xcframework.sh
// (TOKENKEEPER_LOCAL_XCFRAMEWORK=1), or on Linux against libtokenkeeper_uniffi.so (swift/README.md).
// Not run on this repository's CI, which has no Swift toolchain.
import XCTest
@testable import TokenKeeper

private let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"

private final class CountingSource: TokenSource, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var calls = 0
    let delayNanos: UInt64

    init(delayNanos: UInt64 = 0) { self.delayNanos = delayNanos }

    func fetch(request: FetchRequest) async throws -> FetchedToken {
        lock.lock(); calls += 1; lock.unlock()
        if delayNanos > 0 { try await Task.sleep(nanoseconds: delayNanos) }
        return FetchedToken(token: Secret(value: jwt), expiresInMs: 600_000)
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

final class TokenKeeperTests: XCTestCase {
    private func config() -> SessionConfig {
        SessionConfig(spec: SessionSpec(channel: "room-1", user: "u1"))
    }

    func testGeneratedDefaultsMatchTheCorePolicy() {
        XCTAssertEqual(PolicyConfig(), defaultPolicy())
    }

    func testInspectDecodesAJwt() throws {
        let info = try inspect(token: jwt)
        XCTAssertEqual(info.format, .jwt)
        XCTAssertEqual(info.expiresAt, 9_999_999_999)
    }

    func testFirstTokenFromASwiftSource() async throws {
        let keeper = try Keeper()
        let source = CountingSource()
        let session = keeper.openSession(config: config(), source: source)
        let issued = try await session.token()
        XCTAssertEqual(issued.token.expose(), jwt)
        XCTAssertEqual(issued.reason, .initial)
        XCTAssertEqual(issued.expiresAtMs - issued.receivedAtMs, 600_000)
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

    func testReauthRequiredFromTheSourceStopsTheSession() async throws {
        let keeper = try Keeper()
        let source = ClosureTokenSource { _ in
            throw errorForHttpStatus(status: 401, retryAfterMs: nil, message: "expired")
        }
        let session = keeper.openSession(config: config(), source: source)
        do {
            _ = try await session.token()
            XCTFail("expected ReauthRequired")
        } catch TokenKeeperError.ReauthRequired(let reason) {
            XCTAssertTrue(reason.contains("401"))
        }
        XCTAssertEqual(session.state(), .failed)
    }

    func testEventsStreamEndsWithClosed() async throws {
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

    func testRotatedCredentialsReachTheHostStore() async throws {
        let store = MemoryStore()
        let keeper = try Keeper(credentialStore: store)
        let source = ClosureTokenSource { _ in
            FetchedToken(token: Secret(value: jwt), rotatedCredentials: Secret(value: "refresh-1"))
        }
        var cfg = config()
        cfg = SessionConfig(spec: cfg.spec, credentialsKey: "cred:u1")
        let session = keeper.openSession(config: cfg, source: source)
        _ = try await session.token()
        XCTAssertEqual(store.values["cred:u1"], "refresh-1")
        session.close()
    }
}
