// Test helper: the reference backend (tokenkeeper-server) started by scripts/test-kotlin.sh,
// reached with the JDK's own HTTP client.
package dev.tokenkeeper

import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.Duration
import java.util.UUID
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.future.await

object Backend {
    val url: String = System.getenv("TK_SERVER_URL") ?: error("TK_SERVER_URL not set: run scripts/test-kotlin.sh")
    private val adminKey: String = System.getenv("TK_ADMIN_KEY") ?: error("TK_ADMIN_KEY not set")
    val http: HttpClient = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()

    fun jsonString(body: String, field: String): String? =
        Regex("\"" + Regex.escape(field) + "\"\\s*:\\s*\"([^\"]*)\"").find(body)?.groupValues?.get(1)

    private fun admin(path: String, body: String, method: String = "POST"): String {
        val req = HttpRequest.newBuilder(URI.create("$url/admin$path"))
            .header("Authorization", "Bearer $adminKey")
            .header("Content-Type", "application/json")
            .method(method, HttpRequest.BodyPublishers.ofString(body))
            .build()
        val resp = http.send(req, HttpResponse.BodyHandlers.ofString())
        check(resp.statusCode() in 200..299) { "admin $path: HTTP ${resp.statusCode()}: ${resp.body()}" }
        return resp.body()
    }

    data class User(val id: String, val apiKey: String)

    /** A fresh user owning a fresh live stream. */
    fun userWithStream(): Pair<User, String> {
        val id = "kt-" + UUID.randomUUID().toString().take(8)
        val body = admin("/users", "{\"id\":\"$id\"}")
        val user = User(id, jsonString(body, "api_key") ?: error("no api_key in $body"))
        val channel = "ch-$id"
        admin("/streams", "{\"channel\":\"$channel\",\"owner\":\"$id\"}")
        return user to channel
    }

    fun ban(user: User) {
        admin("/users/${user.id}/ban", "{}")
    }

    /**
     * Runs [block] while the backend fails [errorRate] of token requests (503 or 500) and
     * answers each after [latencyMs]; the faults are off again afterwards. The faults apply to
     * every client of this backend: only for tests that run alone.
     */
    fun <T> withFaults(errorRate: Double, latencyMs: Long, block: () -> T): T {
        admin("/faults", "{\"error_rate\":$errorRate,\"latency_ms\":$latencyMs}", method = "PUT")
        try {
            return block()
        } finally {
            admin("/faults", "{\"error_rate\":0,\"latency_ms\":0}", method = "PUT")
        }
    }
}

/** One call the SDK made to a [KotlinHttpSource]. */
data class SourceCall(
    val startedAtMs: Long,
    val reason: FetchReason,
    val attempt: UInt,
    /** The text of the token being replaced, if any (test bookkeeping only). */
    val previous: String?,
)

/**
 * A token source written in Kotlin: POSTs to the backend's RTC endpoint with the JDK HTTP client
 * and classifies failures with [errorForHttpStatus]. Records every call and, in order, every
 * token it handed to the SDK.
 */
class KotlinHttpSource(
    private val apiKey: String,
    private val ttlSecs: Int = 60,
    private val delayMs: Long = 0,
    private val rotate: Boolean = false,
    private val vendor: String = "agora",
) : TokenSource {
    val calls = AtomicInteger()
    val seenCredentials = java.util.Collections.synchronizedList(mutableListOf<String?>())
    private val callLog = mutableListOf<SourceCall>()
    private val delivered = mutableListOf<String>()

    /** Every call, in the order they started. */
    fun callLog(): List<SourceCall> = synchronized(callLog) { callLog.toList() }

    /** Every token returned to the SDK, in order. */
    fun delivered(): List<String> = synchronized(delivered) { delivered.toList() }

    override suspend fun fetch(request: FetchRequest): FetchedToken {
        val n = calls.incrementAndGet()
        synchronized(callLog) {
            callLog.add(SourceCall(System.currentTimeMillis(), request.reason, request.attempt, request.previousToken?.expose()))
        }
        seenCredentials.add(request.credentials?.expose())
        if (delayMs > 0) kotlinx.coroutines.delay(delayMs)
        val body = "{\"vendor\":\"$vendor\",\"channel\":\"${request.session.channel}\"," +
            "\"user_id\":\"${request.session.user}\",\"role\":\"${request.session.role ?: "subscriber"}\"," +
            "\"ttl_secs\":$ttlSecs}"
        val req = HttpRequest.newBuilder(URI.create("${Backend.url}/api/v1/rtc/token"))
            .header("Authorization", "Bearer $apiKey")
            .header("Content-Type", "application/json")
            .timeout(request.timeout)
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build()
        val resp = try {
            Backend.http.sendAsync(req, HttpResponse.BodyHandlers.ofString()).await()
        } catch (e: java.io.IOException) {
            throw TokenKeeperException.RetryLater("network: ${e.message}", null)
        }
        if (resp.statusCode() != 200) {
            val retryAfter = resp.headers().firstValue("Retry-After").map { Duration.ofSeconds(it.toLong()) }.orElse(null)
            throw errorForHttpStatus(resp.statusCode().toUShort(), retryAfter, resp.body().take(200))
        }
        val token = Backend.jsonString(resp.body(), "token") ?: throw TokenKeeperException.RetryLater("no token in response", null)
        synchronized(delivered) { delivered.add(token) }
        return FetchedToken(Secret(token), rotatedCredentials = if (rotate) Secret("refresh-$n") else null)
    }
}
