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

    private fun admin(path: String, body: String): String {
        val req = HttpRequest.newBuilder(URI.create("$url/admin$path"))
            .header("Authorization", "Bearer $adminKey")
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
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
}

/**
 * A token source written in Kotlin: POSTs to the backend's RTC endpoint with the JDK HTTP client
 * and classifies failures with [errorForHttpStatus].
 */
class KotlinHttpSource(
    private val apiKey: String,
    private val ttlSecs: Int = 60,
    private val delayMs: Long = 0,
    private val rotate: Boolean = false,
) : TokenSource {
    val calls = AtomicInteger()
    val seenCredentials = java.util.Collections.synchronizedList(mutableListOf<String?>())

    override suspend fun fetch(request: FetchRequest): FetchedToken {
        val n = calls.incrementAndGet()
        seenCredentials.add(request.credentials?.expose())
        if (delayMs > 0) kotlinx.coroutines.delay(delayMs)
        val body = "{\"vendor\":\"agora\",\"channel\":\"${request.session.channel}\"," +
            "\"user_id\":\"${request.session.user}\",\"role\":\"${request.session.role ?: "subscriber"}\"," +
            "\"ttl_secs\":$ttlSecs}"
        val req = HttpRequest.newBuilder(URI.create("${Backend.url}/api/v1/rtc/token"))
            .header("Authorization", "Bearer $apiKey")
            .header("Content-Type", "application/json")
            .timeout(Duration.ofMillis(request.timeoutMs.toLong()))
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build()
        val resp = try {
            Backend.http.sendAsync(req, HttpResponse.BodyHandlers.ofString()).await()
        } catch (e: java.io.IOException) {
            throw TokenKeeperException.RetryLater("network: ${e.message}", null)
        }
        if (resp.statusCode() != 200) {
            val retryAfter = resp.headers().firstValue("Retry-After").map { it.toULong() * 1000u }.orElse(null)
            throw errorForHttpStatus(resp.statusCode().toUShort(), retryAfter, resp.body().take(200))
        }
        val token = Backend.jsonString(resp.body(), "token") ?: throw TokenKeeperException.RetryLater("no token in response", null)
        return FetchedToken(Secret(token), rotatedCredentials = if (rotate) Secret("refresh-$n") else null)
    }
}
