// Watching a session from Kotlin: the replaying status StateFlow, event flows that tell a
// stopped session from a closed one, and listeners that throw.
package dev.tokenkeeper

import java.time.Duration
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertSame
import kotlin.test.assertTrue

class ObservationTest {
    private fun config(user: Backend.User, channel: String) = SessionConfig(SessionSpec(channel, user.id, role = "publisher"))

    @Test
    fun statusStateFlowReplaysTheCurrentStatusToEveryCollector() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        Keeper().use { keeper ->
            val session = keeper.openSession(config(user, channel), KotlinHttpSource(user.apiKey))
            val status = session.status
            assertSame(status, session.status, "one flow per session")
            assertEquals(SessionState.IDLE, status.value.state)
            val issued = session.token()
            val valid = withTimeout(5_000) { status.first { it.state == SessionState.VALID } }
            assertEquals(issued.expiresAt, valid.expiresAt)
            assertNull(valid.error)
            assertEquals(valid, status.first(), "a late collector starts with the current status")
            assertEquals(valid, session.statusUpdates().first(), "so does the cold flow")
            session.closeSession()
            withTimeout(5_000) { status.first { it.state == SessionState.CLOSED } }
            assertEquals(SessionState.CLOSED, status.value.state, "it stays closed")
            assertEquals(listOf(SessionState.CLOSED), session.statusUpdates().toList().map { it.state },
                "the cold flow of a closed session: its status, then the end")
            session.close()
        }
    }

    @Test
    fun aStoppedSessionReportsItsErrorAndItsEventsEndOnlyWhenItCloses() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        Keeper().use { keeper ->
            val session = keeper.openSession(config(user, channel), KotlinHttpSource("tku_not-a-real-key"))
            val kinds = async { session.events().map { it.kind }.toList() }
            assertFailsWith<TokenKeeperException.ReauthRequired> { session.token() }
            val failed = withTimeout(5_000) { session.status.first { it.state == SessionState.FAILED } }
            assertTrue(failed.error is TokenKeeperException.ReauthRequired, "$failed")
            assertTrue(kinds.isActive, "the event flow of a stopped session stays open")
            session.closeSession()
            val seen = withTimeout(5_000) { kinds.await() }
            assertTrue(seen.any { it is EventKind.ReauthRequired }, "$seen")
            assertTrue(seen.last() is EventKind.Closed, "$seen")
            assertEquals(1, seen.count { it is EventKind.Closed })
            session.close()
        }
    }

    @Test
    fun listenersThatThrowKeepReceivingAndRenewalsGoOn() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        val source = KotlinHttpSource(user.apiKey)
        val built = AtomicInteger()
        val raw = AtomicInteger()
        Keeper().use { keeper ->
            keeper.openSession(config(user, channel), source).useSession { session ->
                session.addListener(eventListener {
                    if (it.kind is EventKind.Issued) built.incrementAndGet()
                    TODO("a listener that was never finished")
                })
                session.addListener(object : EventListener {
                    override fun onEvent(event: SessionEvent) {
                        if (event.kind is EventKind.Issued) raw.incrementAndGet()
                        throw IllegalStateException("listener bug")
                    }
                })
                val first = session.token()
                session.renewToken()
                val third = session.renewToken()
                assertTrue(keeper.flushListeners(Duration.ofSeconds(5)))
                assertEquals(3, built.get(), "the builder listener saw every Issued event")
                assertEquals(3, raw.get(), "the plain listener saw every Issued event")
                assertEquals(SessionState.VALID, session.state())
                assertEquals(third, session.current())
                assertTrue(first != third)
                assertEquals(3, source.calls.get())
            }
        }
    }
}
