// What the engine reports (expired, rejected) and what the app signals (resumed, network back),
// through the Kotlin bindings against the reference backend.
package dev.tokenkeeper

import java.time.Duration
import java.time.Instant
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue

/** A source whose first call runs [first] instead of asking [inner]. */
class FirstCallThen(private val inner: TokenSource, private val first: suspend () -> FetchedToken) : TokenSource {
    val calls = AtomicInteger()
    override suspend fun fetch(request: FetchRequest): FetchedToken =
        if (calls.incrementAndGet() == 1) first() else inner.fetch(request)
}

class ReportsAndSignalsTest {
    private fun config(user: Backend.User, channel: String) = SessionConfig(SessionSpec(channel, user.id, role = "publisher"))

    @Test
    fun tokenExpiredFetchesAtOnceAndALateReportAboutTheOldTokenChangesNothing() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        val source = KotlinHttpSource(user.apiKey)
        Keeper().use { keeper ->
            keeper.openSession(config(user, channel), source).useSession { session ->
                val first = session.token()
                val fresh = session.tokenExpired(first.token)
                assertEquals(FetchReason.EMERGENCY, fresh.reason)
                assertNotEquals(first.token, fresh.token)
                assertEquals(1uL, session.counters().emergencyFetches)
                val again = session.tokenExpired(first.token)
                assertEquals(fresh, again, "a report about the replaced token returns the current one")
                assertEquals(2, source.calls.get(), "and fetches nothing")
                session.onTokenExpired(first.token.expose())
                assertEquals(fresh, session.current(), "nor does the notification form")
                assertEquals(2, source.calls.get())
            }
        }
    }

    @Test
    fun onTokenExpiredReturnsAtOnceAndFetchesInTheBackground() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        val source = KotlinHttpSource(user.apiKey, delayMs = 300)
        Keeper().use { keeper ->
            keeper.openSession(config(user, channel), source).useSession { session ->
                val first = session.token()
                val events = session.events()
                val issued = async { events.first { it.kind is EventKind.Issued } }
                val calledAt = System.nanoTime()
                session.onTokenExpired(first.token.expose())
                val returnedMs = (System.nanoTime() - calledAt) / 1_000_000
                assertTrue(returnedMs < 250, "a notification does not wait for the fetch: $returnedMs ms")
                val event = withTimeout(10_000) { issued.await() }
                assertEquals(FetchReason.EMERGENCY, (event.kind as EventKind.Issued).reason)
                assertNotEquals(first.token, session.current()?.token)
                assertEquals(2, source.calls.get())
            }
        }
    }

    @Test
    fun tokenRejectedRefetchesOnceAndTwoFreshRejectionsStopTheSession() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        val source = KotlinHttpSource(user.apiKey)
        Keeper().use { keeper ->
            keeper.openSession(config(user, channel), source).useSession { session ->
                val first = session.token()
                val second = session.tokenRejected(first.token)
                assertEquals(FetchReason.REJECTED, second.reason)
                assertNotEquals(first.token, second.token)
                assertEquals(1uL, session.counters().rejections)
                val e = assertFailsWith<TokenKeeperException.Rejected> { session.tokenRejected(second.token) }
                assertTrue(e.reason.isNotEmpty())
                assertEquals(SessionState.FAILED, session.state(), "the loop breaker stopped the session")
                assertTrue(session.status().error is TokenKeeperException.Rejected, "${session.status()}")
                assertEquals(2, source.calls.get(), "no fetch for the second fresh rejection")
                val recovered = session.renewToken()
                assertEquals(FetchReason.FORCED, recovered.reason)
                assertEquals(SessionState.VALID, session.state(), "renewToken() clears the stop")
            }
        }
    }

    @Test
    fun resumedCutsAPendingBackoffShort() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        val source = FirstCallThen(KotlinHttpSource(user.apiKey)) {
            throw TokenKeeperException.RetryLater("connection reset", null)
        }
        // The first retry would come 10 to 20 s later.
        Keeper(Policy(backoffInitial = Duration.ofSeconds(20))).use { keeper ->
            keeper.openSession(config(user, channel), source).useSession { session ->
                val events = session.events()
                val failed = async { events.first { it.kind is EventKind.FetchFailed } }
                val token = async { session.token() }
                val failure = withTimeout(10_000) { failed.await() }.kind as EventKind.FetchFailed
                val wait = Duration.between(Instant.now(), failure.nextRetryAt)
                assertTrue(wait > Duration.ofSeconds(8), "backoff before resume: $wait")
                val resumedAt = System.nanoTime()
                keeper.resumed()
                val issued = withTimeout(10_000) { token.await() }
                val tookMs = (System.nanoTime() - resumedAt) / 1_000_000
                assertTrue(tookMs < 5_000, "the retry ran at once after resumed(): $tookMs ms")
                assertEquals(FetchReason.INITIAL, issued.reason)
                assertEquals(2, source.calls.get())
            }
        }
    }

    @Test
    fun networkAvailableRetriesAFetchStuckOnTheOldNetwork() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        val stuck = CompletableDeferred<Unit>()
        val source = FirstCallThen(KotlinHttpSource(user.apiKey)) {
            stuck.complete(Unit)
            delay(60_000) // a request on a network that went away: no answer, no error
            throw TokenKeeperException.RetryLater("never answered", null)
        }
        Keeper(Policy(fetchTimeout = Duration.ofSeconds(25))).use { keeper ->
            keeper.openSession(config(user, channel), source).useSession { session ->
                val token = async { session.token() }
                withTimeout(10_000) { stuck.await() }
                val signalledAt = System.nanoTime()
                keeper.networkAvailable()
                val issued = withTimeout(10_000) { token.await() }
                val tookMs = (System.nanoTime() - signalledAt) / 1_000_000
                assertTrue(tookMs < 5_000, "a second attempt ran beside the stuck one: $tookMs ms")
                assertEquals(FetchReason.INITIAL, issued.reason)
                assertEquals(2, source.calls.get())
            }
        }
    }
}
