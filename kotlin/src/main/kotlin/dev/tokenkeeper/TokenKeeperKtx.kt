// Hand-written Kotlin sugar over the generated bindings (tokenkeeper.kt, never edited by hand).
// Only what belongs in Kotlin lives here: Flow/StateFlow adapters, lambda builders, blocking and
// AutoCloseable helpers. All token logic stays in the Rust core.
package dev.tokenkeeper

import java.util.WeakHashMap
import kotlinx.coroutines.CoroutineName
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking

// --- Events -------------------------------------------------------------------------------------

/**
 * This subscription's events as a [Flow] that completes when the session (or keeper) closes,
 * after the [EventKind.Closed] event. Collect it once; cancelling the collector cancels the
 * subscription.
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
 * The session's events from this call on, as a [Flow] that completes when the session closes
 * (the last event is [EventKind.Closed]; a session stopped by an error emits
 * [EventKind.ReauthRequired], [EventKind.Forbidden] or [EventKind.Failed] and stays open).
 * It subscribes at once, so no event between this call and the first collection is lost;
 * collect it once. Cancelling the collector cancels the subscription.
 *
 * ```kotlin
 * appScope.launch {
 *     session.events().collect { e ->
 *         when (val kind = e.kind) {
 *             is EventKind.ReauthRequired -> showSignIn()
 *             is EventKind.Forbidden -> leaveChannel(kind.reason)
 *             else -> {}
 *         }
 *     }
 * }
 * ```
 */
fun Session.events(): Flow<SessionEvent> = subscribe().asFlow()

/** Every session's events from this call on, as a [Flow] (see [Session.events]). Collect it once. */
fun Keeper.events(): Flow<SessionEvent> = subscribe().asFlow()

// --- Status -------------------------------------------------------------------------------------

/**
 * The status now, then each change, as a cold [Flow]: every collection subscribes anew and
 * starts with the current status; it completes after the [SessionState.CLOSED] status.
 */
fun Session.statusUpdates(): Flow<SessionStatus> = flow {
    watchStatus().use { subscription ->
        try {
            while (true) {
                val status = subscription.next() ?: break
                emit(status)
            }
        } finally {
            subscription.cancel()
        }
    }
}

private val statusFlows = WeakHashMap<Session, StateFlow<SessionStatus>>()
private val statusScope = CoroutineScope(SupervisorJob() + Dispatchers.Default + CoroutineName("tokenkeeper-status"))

/**
 * The session's status as a [StateFlow]: a new collector gets the current status first, then
 * every change (state, the current token's expiry, the error that stopped the session); `value`
 * is the latest status delivered (a change reaches it within moments, `status()` reads it
 * synchronously). After the session closes it stays at [SessionState.CLOSED].
 *
 * One flow per session, shared by every caller; it follows the session from the first access
 * to its close (a [Session.watchStatus] subscription read on [Dispatchers.Default]).
 *
 * ```kotlin
 * lifecycleScope.launch {
 *     session.status.collect { s -> badge.text = s.state.name }   // VALID, RENEWING, EXPIRED, …
 * }
 * if (session.status.value.state == SessionState.FAILED) showError(session.status.value.error)
 * ```
 */
val Session.status: StateFlow<SessionStatus>
    get() = synchronized(statusFlows) {
        statusFlows.getOrPut(this) {
            val subscription = watchStatus()
            val state = MutableStateFlow(status())
            // The pump holds the subscription, never the Session: a session the app drops
            // without closing is still released (and closed) by the garbage collector, which
            // ends the subscription and the pump.
            statusScope.launch {
                subscription.use { s ->
                    while (true) state.value = s.next() ?: break
                }
            }
            state.asStateFlow()
        }
    }

// --- Lambda builders ----------------------------------------------------------------------------

/**
 * A [TokenSink] from a lambda: the engine's "renew token" call. The session calls it once for
 * every token after the one the app joined with, in order, never expired, on an SDK thread.
 * Throw (anything) when the engine did not take the token: the session retries the apply, and
 * a fresh token the engine refuses three times in a row, over at least 5 s, counts as
 * rejected (a new one is fetched).
 *
 * ```kotlin
 * val sink = tokenSink { issued ->
 *     val code = rtcEngine.renewToken(issued.token.expose())
 *     check(code == 0) { "renewToken returned $code" }
 * }
 * ```
 */
fun tokenSink(block: (IssuedToken) -> Unit): TokenSink = object : TokenSink {
    override fun apply(token: IssuedToken) = hostCall { block(token) }
}

/** A [TokenSource] from a suspending lambda. Throw [TokenKeeperException] to classify failures. */
fun tokenSource(block: suspend (FetchRequest) -> FetchedToken): TokenSource = object : TokenSource {
    override suspend fun fetch(request: FetchRequest): FetchedToken = block(request)
}

/**
 * An [EventListener] from a lambda, called on the SDK's event thread (never on the renewal
 * path). An exception it throws is logged and the listener keeps receiving events.
 */
fun eventListener(block: (SessionEvent) -> Unit): EventListener = object : EventListener {
    override fun onEvent(event: SessionEvent) = hostCall { block(event) }
}

/**
 * A [LogSink] from a lambda, called on SDK threads (keep it quick). Install it with
 * [setLogSink]: `setLogSink(logSink { Log.println(…, "tokenkeeper", it.message) }, LogLevel.INFO)`.
 */
fun logSink(block: (LogRecord) -> Unit): LogSink = object : LogSink {
    override fun log(record: LogRecord) = hostCall { block(record) }
}

/**
 * Runs host code called by the SDK, turning whatever it throws into
 * [TokenKeeperException.HostCallback] with the exception's class and message. Without this the
 * generated code would report any other exception with its whole stack trace, and an `Error`
 * (`TODO()`, an assertion) would escape through JNA and read as success.
 */
private inline fun hostCall(block: () -> Unit) {
    try {
        block()
    } catch (e: TokenKeeperException) {
        throw e
    } catch (e: Throwable) {
        throw TokenKeeperException.HostCallback("${e.javaClass.simpleName}: ${e.message}")
    }
}

// --- Blocking and scoped helpers ----------------------------------------------------------------

/** The text of a valid token (waits for a fetch when needed), for the RTC engine only: never log it. */
suspend fun Session.awaitToken(): String = token().token.expose()

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
