// Hand-written Swift sugar over the generated bindings (TokenKeeper.swift, never edited by hand).
// Only what belongs in Swift lives here: AsyncStream, closures. All token logic stays in the Rust
// core. Not compiled here (no Swift toolchain on this repository's machines): tree-sitter parses
// it (scripts/check-syntax.sh).
import Foundation

// MARK: - Streams

public extension EventSubscription {
    /// The subscription as an `AsyncStream` that finishes when the session (or keeper) closes.
    /// Cancelling the consuming task (or dropping the stream) cancels the subscription.
    func stream() -> AsyncStream<SessionEvent> {
        AsyncStream { continuation in
            let task = Task {
                while !Task.isCancelled, let event = try? await self.next() {
                    continuation.yield(event)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in
                self.cancel()
                task.cancel()
            }
        }
    }
}

public extension StatusSubscription {
    /// The subscription as an `AsyncStream`: the current status first (read when the stream
    /// starts), then each change; it finishes after the `.closed` status. A reader that falls behind skips to the
    /// newest status (like a `StateFlow`). Cancelling the consuming task (or dropping the stream)
    /// cancels the subscription.
    func stream() -> AsyncStream<SessionStatus> {
        AsyncStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let task = Task {
                while !Task.isCancelled, let status = try? await self.next() {
                    continuation.yield(status)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in
                self.cancel()
                task.cancel()
            }
        }
    }
}

public extension Session {
    /// This session's events from now on (subscribes at once, so nothing between this call and
    /// the first iteration is lost). Finishes after the `.closed` event. Iterate it once.
    ///
    /// A fatal stop is not the end of the stream: it arrives as a `.reauthRequired`,
    /// `.forbidden` or `.failed` event, and the session can resume (`setCredentials`,
    /// `renewToken()`). To tell "closed" from "failed", read the status: `statusUpdates` ends
    /// with `.closed`, a stopped session is `.failed` with its `error`.
    ///
    /// ```swift
    /// for await event in session.events {
    ///     if case .fetchFailed(_, let attempt, let error, _) = event.kind { log.warning("attempt \(attempt): \(error)") }
    /// }
    /// ```
    var events: AsyncStream<SessionEvent> { subscribe().stream() }

    /// The session's current status, then each change; finishes after the `.closed` status (a
    /// closed session's stream yields `.closed` alone).
    ///
    /// ```swift
    /// for await status in session.statusUpdates {
    ///     switch status.state {
    ///     case .failed: showError(status.error)   // fatal: ReauthRequired, Forbidden, Rejected…
    ///     case .expired: showReconnecting()
    ///     default: hideBanner()
    ///     }
    /// }
    /// // here the session is closed
    /// ```
    var statusUpdates: AsyncStream<SessionStatus> { watchStatus().stream() }

    /// Renews in a new task and hands the fresh token's text to `onToken` (never log it). For
    /// sessions without a sink; with a sink, call `onTokenWillExpire(token:)` instead and the
    /// token reaches the engine by itself.
    @discardableResult
    func renewToken(
        onError: @escaping @Sendable (Error) -> Void = { _ in },
        onToken: @escaping @Sendable (String) -> Void
    ) -> Task<Void, Never> {
        Task {
            do {
                onToken(try await self.renewToken().token.expose())
            } catch {
                onError(error)
            }
        }
    }
}

public extension Keeper {
    /// Every session's events from now on. Finishes when the keeper shuts down. Iterate it once.
    var events: AsyncStream<SessionEvent> { subscribe().stream() }
}

// MARK: - Closures as host callbacks

/// The engine's "renew token" call as a `TokenSink`, for `openSession(config:source:sink:)`.
/// It is called once for every token after the one the app joined with, in order, never with
/// an expired token, on an SDK thread (one call at a time). Throw when the engine did not take
/// the token: the SDK retries, and a fresh token the engine refuses three times in a row, for at
/// least 5 s, is treated as rejected (a new one is fetched).
///
/// ```swift
/// let session = keeper.openSession(config: config, source: source, sink: tokenSink { token in
///     let code = engine.renewToken(token.token.expose())
///     if code != 0 { throw TokenKeeperError.HostCallback(reason: "renewToken returned \(code)") }
/// })
/// ```
public func tokenSink(_ apply: @escaping @Sendable (IssuedToken) throws -> Void) -> TokenSink {
    ClosureTokenSink(apply)
}

/// A `TokenSink` from a closure; see `tokenSink(_:)`.
public final class ClosureTokenSink: TokenSink, @unchecked Sendable {
    private let body: @Sendable (IssuedToken) throws -> Void

    public init(_ body: @escaping @Sendable (IssuedToken) throws -> Void) {
        self.body = body
    }

    public func apply(token: IssuedToken) throws {
        try body(token)
    }
}

/// A `TokenSource` from an async closure. Throw `TokenKeeperError` to classify failures
/// (`errorForHttpStatus(status:retryAfter:message:)` maps an HTTP status); any other error
/// counts as a temporary failure.
public final class ClosureTokenSource: TokenSource, @unchecked Sendable {
    private let body: @Sendable (FetchRequest) async throws -> FetchedToken

    public init(_ body: @escaping @Sendable (FetchRequest) async throws -> FetchedToken) {
        self.body = body
    }

    public func fetch(request: FetchRequest) async throws -> FetchedToken {
        try await body(request)
    }
}

/// An `EventListener` from a closure, for `addListener(listener:)`. Called on the SDK's event
/// thread, in order, never on the renewal path: an error it throws is logged and it keeps
/// receiving events. Keep the returned `ListenerRegistration` to `remove()` it.
public final class ClosureEventListener: EventListener, @unchecked Sendable {
    private let body: @Sendable (SessionEvent) throws -> Void

    public init(_ body: @escaping @Sendable (SessionEvent) throws -> Void) {
        self.body = body
    }

    public func onEvent(event: SessionEvent) throws {
        try body(event)
    }
}

public extension Session {
    /// Calls `onEvent` for each event of this session on the SDK's event thread.
    @discardableResult
    func addListener(_ onEvent: @escaping @Sendable (SessionEvent) throws -> Void) -> ListenerRegistration {
        addListener(listener: ClosureEventListener(onEvent))
    }
}

public extension Keeper {
    /// Calls `onEvent` for each event of every session on the SDK's event thread.
    @discardableResult
    func addListener(_ onEvent: @escaping @Sendable (SessionEvent) throws -> Void) -> ListenerRegistration {
        addListener(listener: ClosureEventListener(onEvent))
    }
}

/// A `LogSink` from a closure, e.g. forwarding to `os_log`/`Logger`. Called on SDK threads:
/// keep it quick. Records are already redacted (no token, no secret).
///
/// ```swift
/// let logger = Logger(subsystem: "com.example.app", category: "tokenkeeper")
/// try setLogSink(sink: ClosureLogSink { logger.log("\($0.target, privacy: .public): \($0.message, privacy: .public)") },
///                minLevel: .info)
/// ```
public final class ClosureLogSink: LogSink, @unchecked Sendable {
    private let body: @Sendable (LogRecord) -> Void

    public init(_ body: @escaping @Sendable (LogRecord) -> Void) {
        self.body = body
    }

    public func log(record: LogRecord) {
        body(record)
    }
}
