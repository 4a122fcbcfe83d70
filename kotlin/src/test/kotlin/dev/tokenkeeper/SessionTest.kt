// Session lifecycle through the Kotlin bindings, against the reference backend over loopback.
package dev.tokenkeeper

import java.time.Duration
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.filter
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

class SessionTest {
    private fun spec(user: Backend.User, channel: String) = SessionSpec(channel, user.id, role = "publisher")

    @Test
    fun firstTokenComesFromTheKotlinSourceAndDecodes() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        val source = KotlinHttpSource(user.apiKey, ttlSecs = 120)
        Keeper().use { keeper ->
            keeper.openSession(SessionConfig(spec(user, channel)), source).useSession { session ->
                assertNull(session.current(), "nothing before the first token()")
                val issued = session.token()
                assertEquals(FetchReason.INITIAL, issued.reason)
                val info = inspect(issued.token.expose())
                assertEquals(TokenFormat.AGORA007, info.format)
                assertTrue(!issued.toString().contains(issued.token.expose()), "token printed: $issued")
                assertEquals(channel, info.channel)
                assertEquals(user.id, info.user)
                assertEquals(info.expiresAt, issued.expiresAt, "expiry comes from the token itself")
                val lifetime = Duration.between(issued.receivedAt, issued.expiresAt).toMillis()
                assertTrue(lifetime in 115_000..121_000, "lifetime $lifetime ms")
                assertEquals(issued, session.current())
                assertEquals(SessionState.VALID, session.state())
                assertEquals(1, source.calls.get())
            }
        }
    }

    @Test
    fun shortTokensAreRenewedOnScheduleAndSeenInTheFlow() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        val source = KotlinHttpSource(user.apiKey, ttlSecs = 3)
        val policy = Policy(renewLead = Duration.ofSeconds(1), renewJitter = Duration.ZERO)
        Keeper(policy).use { keeper ->
            keeper.openSession(SessionConfig(spec(user, channel)), source).useSession { session ->
                val events = session.events() // subscribes now, before the first fetch
                val issuedReasons = async {
                    events
                        .map { it.kind }
                        .filter { it is EventKind.Issued }
                        .take(3)
                        .toList()
                        .map { (it as EventKind.Issued).reason }
                }
                val first = session.token()
                withTimeout(15_000) {
                    assertEquals(listOf(FetchReason.INITIAL, FetchReason.SCHEDULED, FetchReason.SCHEDULED), issuedReasons.await())
                }
                val now = session.current()
                assertNotNull(now, "a valid token is held after renewals")
                assertNotEquals(first.token, now.token)
                assertTrue(session.counters().renewals >= 2uL, "${session.counters()}")
                assertEquals(Duration.ZERO, session.counters().timeWithoutToken, "renewed before expiry: never without a token")
            }
        }
    }

    @Test
    fun renewTokenForcesAFreshToken() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        val source = KotlinHttpSource(user.apiKey)
        Keeper().use { keeper ->
            keeper.openSession(SessionConfig(spec(user, channel)), source).useSession { session ->
                val first = session.token()
                val renewed = session.renewToken()
                assertEquals(FetchReason.FORCED, renewed.reason)
                assertNotEquals(first.token, renewed.token)
                assertEquals(renewed, session.current())
                assertEquals(2, source.calls.get())
            }
        }
    }

    @Test
    fun hostCredentialStoreReceivesRotatedCredentialsBeforeTheToken() = runBlocking {
        val saved = ConcurrentHashMap<String, String>()
        val store = object : CredentialStore {
            override fun load(key: String): Secret? = saved[key]?.let { Secret(it) }
            override fun save(key: String, value: Secret) { saved[key] = value.expose() }
            override fun delete(key: String) { saved.remove(key) }
        }
        saved["cred:alice"] = "refresh-0"
        val (user, channel) = Backend.userWithStream()
        val source = KotlinHttpSource(user.apiKey, rotate = true)
        Keeper(credentialStore = store).use { keeper ->
            val config = SessionConfig(spec(user, channel), credentialsKey = "cred:alice")
            keeper.openSession(config, source).useSession { session ->
                session.token()
                assertEquals("refresh-1", saved["cred:alice"], "rotated credentials saved by the time token() returns")
                session.renewToken()
                assertEquals("refresh-2", saved["cred:alice"])
                assertEquals(listOf<String?>("refresh-0", "refresh-1"), source.seenCredentials.toList(),
                    "first fetch gets the stored credentials, the next one the rotated ones")
            }
        }
    }

    @Test
    fun badApiKeyMeansReauthRequired() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        val source = KotlinHttpSource("tku_not-a-real-key")
        Keeper().use { keeper ->
            keeper.openSession(SessionConfig(spec(user, channel)), source).useSession { session ->
                val e = assertFailsWith<TokenKeeperException.ReauthRequired> { session.token() }
                assertTrue(e.reason.contains("401"), e.reason)
                assertEquals(SessionState.FAILED, session.state())
                assertEquals(1, source.calls.get(), "a fatal error is not retried")
            }
        }
    }

    @Test
    fun bannedUserGetsForbiddenAndAForbiddenEvent() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        val source = KotlinHttpSource(user.apiKey)
        val events = java.util.Collections.synchronizedList(mutableListOf<SessionEvent>())
        Keeper().use { keeper ->
            keeper.openSession(SessionConfig(spec(user, channel)), source).useSession { session ->
                val registration = session.addListener(eventListener { events.add(it) })
                session.token()
                Backend.ban(user)
                val e = assertFailsWith<TokenKeeperException.Forbidden> { session.renewToken() }
                assertTrue(e.reason.contains("banned"), e.reason)
                assertTrue(keeper.flushListeners(Duration.ofSeconds(5)), "listeners run on the SDK's event thread")
                assertTrue(events.any { it.kind is EventKind.Forbidden }, "listener saw Forbidden: $events")
                assertTrue(registration.remove())
                registration.close()
            }
        }
    }

    @Test
    fun closingEndsFlowsAndLeavesNothingBehind() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        val keeper = Keeper()
        val session = keeper.openSession(SessionConfig(spec(user, channel)), KotlinHttpSource(user.apiKey))
        val flowEnd = async { session.events().toList() }
        session.token()
        assertEquals(1uL, keeper.sessionCount())
        session.closeSession()
        val seen = withTimeout(5_000) { flowEnd.await() }
        assertTrue(seen.last().kind is EventKind.Closed, "flow ends with Closed: $seen")
        assertEquals(SessionState.CLOSED, session.state())
        assertFailsWith<TokenKeeperException.Closed> { session.token() }
        assertNull(session.current())
        assertEquals(0uL, keeper.sessionCount())
        session.close()
        keeper.close()
        assertEquals(0, uniffiForeignFutureHandleCount(), "no foreign futures left pending")
    }

    @Test
    fun hundredThreadsShareOneFetch() {
        val (user, channel) = Backend.userWithStream()
        val source = KotlinHttpSource(user.apiKey, delayMs = 300)
        Keeper().use { keeper ->
            keeper.openSession(SessionConfig(spec(user, channel)), source).useSession { session ->
                val start = CountDownLatch(1)
                val tokens = ConcurrentHashMap.newKeySet<String>()
                val errors = ConcurrentHashMap.newKeySet<Throwable>()
                val threads = (1..100).map {
                    Thread {
                        start.await()
                        try {
                            tokens.add(session.tokenBlocking().token.expose())
                        } catch (e: Throwable) {
                            errors.add(e)
                        }
                    }.apply { start() }
                }
                start.countDown()
                threads.forEach { it.join(TimeUnit.SECONDS.toMillis(20)) }
                assertTrue(errors.isEmpty(), "errors: $errors")
                assertEquals(1, tokens.size, "all 100 callers got the same token")
                assertEquals(1, source.calls.get(), "one fetch for 100 concurrent callers")
            }
        }
    }

    @Test
    fun keeperFlowSeesEventsOfAllSessions() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        Keeper().use { keeper ->
            val events = keeper.events() // subscribes now, before the prefetch can issue a token
            val firstIssued = async { events.first { it.kind is EventKind.Issued } }
            keeper.openSession(SessionConfig(spec(user, channel), prefetch = true), KotlinHttpSource(user.apiKey)).useSession { session ->
                val event = withTimeout(10_000) { firstIssued.await() }
                assertEquals(session.id(), event.sessionId)
                assertEquals(channel, event.session.channel)
            }
        }
    }

    @Test
    fun builtInHttpSourceFetchesFromTheBackend() = runBlocking {
        val (user, channel) = Backend.userWithStream()
        val http = HttpSourceConfig(
            endpoint = "${Backend.url}/api/v1/rtc/token",
            bearer = Secret(user.apiKey),
            jsonBody = """{"vendor":"zego","channel":"{channel}","user_id":"{user}","role":"{role}","ttl_secs":90}""",
        )
        Keeper().use { keeper ->
            keeper.openHttpSession(SessionConfig(spec(user, channel)), http).useSession { session ->
                val issued = session.token()
                assertEquals(TokenFormat.ZEGO04, inspect(issued.token.expose()).format)
                val lifetime = Duration.between(issued.receivedAt, issued.expiresAt).toMillis()
                assertTrue(lifetime in 85_000..91_000, "lifetime $lifetime ms")
            }
            val bad = HttpSourceConfig(endpoint = "${Backend.url}/x", jsonBody = "{not json")
            val e = assertFailsWith<TokenKeeperException.Misconfigured> {
                keeper.openHttpSession(SessionConfig(spec(user, channel)), bad)
            }
            assertTrue(e.reason.contains("json_body"), e.reason)
        }
    }
}
