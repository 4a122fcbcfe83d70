// Binding-level behaviour that needs no backend: defaults, inspect, errors, logs.
package dev.tokenkeeper

import org.junit.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

class BindingTest {
    @Test
    fun generatedDefaultsMatchTheCorePolicy() {
        assertEquals(defaultPolicy(), PolicyConfig())
        assertEquals(30_000uL, PolicyConfig().renewLeadMs)
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
        val retry = errorForHttpStatus(429u, 7000u, "slow down")
        assertTrue(retry is TokenKeeperException.RetryLater)
        assertEquals(7000uL, (retry as TokenKeeperException.RetryLater).retryAfterMs)
        assertTrue(errorForHttpStatus(400u, null, "bad") is TokenKeeperException.Misconfigured)
    }

    @Test
    fun logSinkReceivesSdkRecordsWithoutTokens() = kotlinx.coroutines.runBlocking {
        val records = java.util.Collections.synchronizedList(mutableListOf<LogRecord>())
        setLogSink(logSink { records.add(it) }, LogLevel.DEBUG)
        try {
            val token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
            Keeper().use { keeper ->
                val source = tokenSource { FetchedToken(token) }
                keeper.openSession(SessionConfig(SessionSpec("log-room", "u1")), source).useSession { session ->
                    assertEquals(token, session.token().token)
                }
            }
            assertTrue(records.any { it.target.startsWith("tokenkeeper") }, "records: $records")
            assertTrue(records.none { it.message.contains(token) || it.message.contains("c2lnbmF0dXJl") }, "a token leaked: $records")
        } finally {
            clearLogSink()
        }
    }
}
