// Timing loop for the note (not a test): cost of Session.current() through the binding.
package dev.tokenkeeper

import kotlinx.coroutines.runBlocking

fun main() = runBlocking {
    val token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJl"
    Keeper().use { keeper ->
        keeper.openSession(SessionConfig(SessionSpec("bench", "u1")), tokenSource { FetchedToken(token) }).useSession { s ->
            s.token()
            repeat(20_000) { s.current() }
            val n = 200_000
            val t0 = System.nanoTime()
            repeat(n) { s.current() }
            val ns = (System.nanoTime() - t0) / n
            println("kotlin: current() through the binding: $ns ns/call ($n calls)")
        }
    }
}
