// Test helper: an RTC engine that behaves as Agora's does, in real time.
package dev.tokenkeeper

import java.time.Duration
import java.util.concurrent.Executors
import java.util.concurrent.ScheduledFuture
import java.util.concurrent.TimeUnit

/**
 * An engine like Agora's `RtcEngine`: it holds the token it joined with or was last given
 * ([renewToken]); [warnBefore] that token's expiry it says "will expire" naming the token
 * (`onTokenPrivilegeWillExpire(token)`), at its expiry "request token" naming none
 * (`onRequestToken()`); a stream whose engine holds an expired token fails. The expiry is read
 * from the token itself, as the RTC server reads it.
 *
 * @param refuseFirst how many `renewToken` calls it refuses first with Agora's -7 ("not
 *   initialized"): an engine that is not ready yet.
 * @param reportStaleLate after each renewal, report the token it replaced 300 ms late
 *   (will expire, expired, rejected), as a callback queued on the engine's thread would.
 */
class FakeEngine(
    private val warnBefore: Duration,
    private val refuseFirst: Int = 0,
    private val reportStaleLate: Boolean = false,
) {
    private class Held(val text: String, val expiresAtMs: Long)

    /** The session whose notifications the engine's callbacks call. */
    @Volatile lateinit var session: Session

    private val timers = Executors.newSingleThreadScheduledExecutor { r ->
        Thread(r, "fake-engine").apply { isDaemon = true }
    }
    private val lock = Any()
    private var held: Held? = null
    private var scheduled: List<ScheduledFuture<*>> = emptyList()
    private val applied = mutableListOf<String>()
    private var finished = false

    /** Tokens the engine held, in order: the join token first, then each renewal. */
    fun applied(): List<String> = synchronized(lock) { applied.toList() }

    /** A token given twice, or one expiring before the token it replaced. */
    var outOfOrder = 0; private set
    /** Total time the engine held an expired token (its stream would have failed). */
    var expiredMs = 0L; private set
    /** `renewToken` calls refused. */
    var refused = 0; private set
    /** "Will expire" callbacks made. */
    var warnings = 0; private set
    /** "Request token" callbacks made (the token expired in the engine). */
    var requestTokens = 0; private set
    /** Late reports about replaced tokens made. */
    var lateReports = 0; private set

    /** `joinChannel(token, …)`. */
    fun joinChannel(token: String) {
        hold(token)
    }

    /** Agora's `renewToken(token)`: 0 on success, -7 while the engine is not ready. */
    fun renewToken(token: String): Int {
        synchronized(lock) {
            if (refused < refuseFirst) {
                refused++
                return -7
            }
        }
        hold(token)
        return 0
    }

    private fun hold(text: String) {
        val now = System.currentTimeMillis()
        val expiresAt = inspect(text).expiresAt!!.toEpochMilli()
        val replaced = synchronized(lock) {
            if (finished) return // the measurement is over
            val old = held
            if (old != null) {
                if (now > old.expiresAtMs) expiredMs += now - old.expiresAtMs
                if (text in applied || expiresAt < old.expiresAtMs) outOfOrder++
            }
            applied.add(text)
            held = Held(text, expiresAt)
            scheduled.forEach { it.cancel(false) }
            scheduled = listOf(
                timers.schedule({ warn(text) }, maxOf(0, expiresAt - warnBefore.toMillis() - now), TimeUnit.MILLISECONDS),
                timers.schedule({ requestToken(text) }, maxOf(0, expiresAt - now), TimeUnit.MILLISECONDS),
            )
            old
        }
        if (reportStaleLate && replaced != null) {
            timers.schedule({ reportLate(replaced.text) }, 300, TimeUnit.MILLISECONDS)
        }
    }

    private fun warn(text: String) {
        synchronized(lock) {
            if (held?.text != text || finished) return
            warnings++
        }
        session.onTokenWillExpire(text)
    }

    private fun requestToken(text: String) {
        synchronized(lock) {
            if (held?.text != text || finished) return
            requestTokens++
        }
        session.onTokenExpired()
    }

    private fun reportLate(text: String) {
        synchronized(lock) {
            if (finished) return
            lateReports++
        }
        session.onTokenWillExpire(text)
        session.onTokenExpired(text)
        session.onTokenRejected(text)
    }

    /** Stops the engine's callbacks and counts a still-held expired token. */
    fun finish() {
        synchronized(lock) {
            finished = true
            val now = System.currentTimeMillis()
            held?.let { if (now > it.expiresAtMs) expiredMs += now - it.expiresAtMs }
            scheduled.forEach { it.cancel(false) }
        }
        timers.shutdown()
    }
}
