// Hand-written Swift sugar over the generated bindings (TokenKeeper.swift, never edited by hand).
// Only what belongs in Swift lives here: AsyncStream, closures, task helpers. All token logic
// stays in the Rust core.
import Foundation

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

public extension Session {
    /// This session's events from now on (subscribes at once, so nothing between this call and
    /// the first iteration is lost). Iterate it once.
    ///
    /// ```swift
    /// for await event in session.events {
    ///     if case .issued = event.kind, let t = session.current() { engine.renewToken(t.token.expose()) }
    /// }
    /// ```
    var events: AsyncStream<SessionEvent> { subscribe().stream() }

    /// Renews in a new task and hands the fresh token's text to `onToken` (never log it): the body
    /// of an RTC engine's "token will expire" delegate callback, which is not async.
    ///
    /// ```swift
    /// func rtcEngine(_ engine: AgoraRtcEngineKit, tokenPrivilegeWillExpire token: String) {
    ///     session.renewToken { fresh in engine.renewToken(fresh) }
    /// }
    /// ```
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
    /// Every session's events from now on. Iterate it once.
    var events: AsyncStream<SessionEvent> { subscribe().stream() }
}

/// A `TokenSource` from an async closure. Throw `TokenKeeperError` to classify failures
/// (`errorForHttpStatus(status:retryAfterMs:message:)` maps an HTTP status).
public final class ClosureTokenSource: TokenSource, @unchecked Sendable {
    private let body: @Sendable (FetchRequest) async throws -> FetchedToken

    public init(_ body: @escaping @Sendable (FetchRequest) async throws -> FetchedToken) {
        self.body = body
    }

    public func fetch(request: FetchRequest) async throws -> FetchedToken {
        try await body(request)
    }
}

/// A `LogSink` from a closure, e.g. forwarding to `os_log`. Called on SDK threads.
public final class ClosureLogSink: LogSink, @unchecked Sendable {
    private let body: @Sendable (LogRecord) -> Void

    public init(_ body: @escaping @Sendable (LogRecord) -> Void) {
        self.body = body
    }

    public func log(record: LogRecord) {
        body(record)
    }
}
