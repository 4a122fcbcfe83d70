// Binding-level behaviour that needs no backend: defaults, inspect, errors, logs.
package dev.tokenkeeper

import java.time.Duration
import java.time.Instant
import org.junit.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

class BindingTest {
    @Test
    fun policyFieldsDefaultToNullAndDefaultPolicyShowsTheCoreValues() {
        assertEquals(Policy(null, null, null, null, null, null, null, null, null, null, null, null, null, null), Policy())
        val defaults = defaultPolicy()
        assertEquals(Duration.ofSeconds(30), defaults.renewLead)
        assertEquals(Duration.ofSeconds(3), defaults.renewJitter)
        assertEquals(Duration.ofSeconds(10), defaults.fetchTimeout)
        assertEquals(Duration.ofSeconds(30), defaults.tokenWait)
        assertEquals(true, defaults.adaptiveLead)
    }

    @Test
    fun inspectRejectsGarbageWithAnInvalidTokenError() {
        val e = assertFailsWith<TokenKeeperException.InvalidToken> { inspect("Bearer abc") }
        assertTrue(e.reason.contains("Bearer"), e.reason)
    }

    @Test
    fun httpStatusesMapToWhatTheAppShouldDo() {
        assertTrue(errorForHttpStatus(401u, null, "expired") is TokenKeeperException.ReauthRequired)
        assertTrue(errorForHttpStatus(403u, null, "banned") is TokenKeeperException.Forbidden)
        val retry = errorForHttpStatus(429u, Duration.ofSeconds(7), "slow down")
        assertTrue(retry is TokenKeeperException.RetryLater)
        assertEquals(Duration.ofSeconds(7), (retry as TokenKeeperException.RetryLater).retryAfter)
        assertTrue(errorForHttpStatus(400u, null, "bad") is TokenKeeperException.Misconfigured)
    }

    @Test
    fun recordsPrintSecretsAsTheirLengthOnly() = kotlinx.coroutines.runBlocking {
        val token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
        val secret = Secret(token)
        assertEquals("Secret(len=${token.length})", secret.toString())
        assertEquals(token, secret.expose())
        assertEquals(token.length.toULong(), secret.len())
        assertEquals(Secret(token), secret, "equal when the texts are")
        assertEquals(Secret(token).hashCode(), secret.hashCode())
        Keeper().use { keeper ->
            val requests = java.util.Collections.synchronizedList(mutableListOf<String>())
            val tokens = listOf(token, token.dropLast(2) + "ZA") // a renewal must bring a different token
            val source = tokenSource { request ->
                requests.add(request.toString())
                FetchedToken(Secret(tokens[requests.size - 1]), rotatedCredentials = Secret("refresh-SECRET"))
            }
            keeper.openSession(SessionConfig(SessionSpec("print-room", "u1")), source).useSession { session ->
                val issued = session.token()
                session.renewToken()
                val printed = listOf(
                    issued.toString(),
                    "$issued",
                    session.current().toString(),
                    FetchedToken(Secret(token), rotatedCredentials = Secret("refresh-SECRET")).toString(),
                    HttpSourceConfig(
                        endpoint = "https://api.example.com/token",
                        bearer = Secret("bearer-SECRET"),
                        headers = mapOf("X-Api-Key" to Secret("key-SECRET")),
                    ).toString(),
                ) + synchronized(requests) { requests.toList() }
                assertTrue(issued.toString().startsWith("IssuedToken(token=Secret(len=${token.length})"), issued.toString())
                assertTrue(requests.size == 2 && requests[1].contains("previousToken=Secret(len="), "$requests")
                for (text in printed) {
                    assertTrue(tokens.none { text.contains(it) } && !text.contains("c2lnbmF0dXJl"), "a token leaked: $text")
                    assertTrue(!text.contains("SECRET"), "a secret leaked: $text")
                }
            }
        }
    }

    @Test
    fun logSinkReceivesSdkRecordsWithoutTokens() = kotlinx.coroutines.runBlocking {
        val records = java.util.Collections.synchronizedList(mutableListOf<LogRecord>())
        setLogSink(logSink { records.add(it) }, LogLevel.DEBUG)
        try {
            val token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
            Keeper().use { keeper ->
                val source = tokenSource { FetchedToken(Secret(token)) }
                keeper.openSession(SessionConfig(SessionSpec("log-room", "u1")), source).useSession { session ->
                    assertEquals(token, session.token().token.expose())
                }
            }
            // SDK threads may still be logging: iterate a copy taken under the list's lock.
            val seen = synchronized(records) { records.toList() }
            assertTrue(seen.any { it.target.startsWith("tokenkeeper") }, "records: $seen")
            assertTrue(seen.none { it.message.contains(token) || it.message.contains("c2lnbmF0dXJl") }, "a token leaked: $seen")
        } finally {
            clearLogSink()
        }
    }

    @Test
    fun builtCallbacksReportWhatTheHostThrewWithoutAStackTrace() {
        val token = IssuedToken(Secret("t"), Instant.EPOCH, Instant.EPOCH, FetchReason.INITIAL)
        val e = assertFailsWith<TokenKeeperException.HostCallback> {
            tokenSink { error("renewToken returned -7") }.apply(token)
        }
        assertEquals("IllegalStateException: renewToken returned -7", e.reason)
        val todo = assertFailsWith<TokenKeeperException.HostCallback> {
            eventListener { TODO("not written yet") }.onEvent(
                SessionEvent(1uL, SessionSpec("c", "u"), Instant.EPOCH, EventKind.Closed),
            )
        }
        assertTrue(todo.reason.startsWith("NotImplementedError: "), todo.reason)
        val kept = assertFailsWith<TokenKeeperException.RetryLater> {
            logSink { throw TokenKeeperException.RetryLater("busy", null) }.log(LogRecord(LogLevel.INFO, "t", "m"))
        }
        assertEquals("busy", kept.reason, "a TokenKeeperException passes through unchanged")
    }
}
