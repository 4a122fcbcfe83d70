// Hand-written Kotlin sugar over the generated bindings (tokenkeeper.kt, never edited by hand).
// Only what belongs in Kotlin lives here: Flow, coroutine helpers, lambdas, AutoCloseable use.
// All token logic stays in the Rust core.
package dev.tokenkeeper

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking

/**
 * This subscription's events as a [Flow] that completes when the session (or keeper) closes.
 * Collect it once; cancelling the collector cancels the subscription.
 */
fun EventSubscription.asFlow(): Flow<SessionEvent> = flow {
    try {
        while (true) {
            val event = next() ?: break
            emit(event)
        }
    } finally {
        cancel()
        close()
    }
}

/**
 * The session's events from this call on, as a [Flow] (subscribes now, so no event between
 * this call and the first collection is lost). Collect it once.
 *
 * ```kotlin
 * scope.launch {
 *     session.events().collect { e ->
 *         if (e.kind is EventKind.Issued) session.current()?.let { engine.renewToken(it.token.expose()) }
 *     }
 * }
 * ```
 */
fun Session.events(): Flow<SessionEvent> = subscribe().asFlow()

/** Every session's events from this call on, as a [Flow]. Collect it once. */
fun Keeper.events(): Flow<SessionEvent> = subscribe().asFlow()

/** The text of a valid token (waits for a fetch when needed), for the RTC engine only: never log it. */
suspend fun Session.awaitToken(): String = token().token.expose()

/**
 * Renews in [scope] and hands the new token's text to [onToken] (never log it): the body of an RTC engine's
 * "token will expire" callback, which is not a coroutine.
 *
 * ```kotlin
 * override fun onTokenPrivilegeWillExpire(token: String?) {
 *     session.renewTokenIn(appScope) { fresh -> engine.renewToken(fresh) }
 * }
 * ```
 */
fun Session.renewTokenIn(
    scope: CoroutineScope,
    onError: (TokenKeeperException) -> Unit = {},
    onToken: (String) -> Unit,
): Job = scope.launch {
    try {
        onToken(renewToken().token.expose())
    } catch (e: TokenKeeperException) {
        onError(e)
    }
}

/** Blocking [Session.token] for Java callers and plain threads. Never call it on the main thread. */
fun Session.tokenBlocking(): IssuedToken = runBlocking { token() }

/**
 * Runs [block] with this session, then closes it (renewals stop at once) and releases it,
 * whatever happens in [block].
 */
inline fun <R> Session.useSession(block: (Session) -> R): R {
    try {
        return block(this)
    } finally {
        closeSession()
        close()
    }
}

/** A [TokenSource] from a suspending lambda. Throw [TokenKeeperException] to classify failures. */
fun tokenSource(block: suspend (FetchRequest) -> FetchedToken): TokenSource = object : TokenSource {
    override suspend fun fetch(request: FetchRequest): FetchedToken = block(request)
}

/** An [EventListener] from a lambda (called on an SDK thread: keep it quick). */
fun eventListener(block: (SessionEvent) -> Unit): EventListener = object : EventListener {
    override fun onEvent(event: SessionEvent) = block(event)
}

/** A [LogSink] from a lambda, e.g. `logSink { Log.println(priority(it.level), "tokenkeeper", it.message) }`. */
fun logSink(block: (LogRecord) -> Unit): LogSink = object : LogSink {
    override fun log(record: LogRecord) = block(record)
}
