// Timing loop for the note (not a test): cost of Session.current() through the binding.
package dev.tokenkeeper

import kotlinx.coroutines.runBlocking

fun main() = runBlocking {
    val token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJl"
    Keeper().use { keeper ->
        keeper.openSession(SessionConfig(SessionSpec("bench", "u1")), tokenSource { FetchedToken(token) }).useSession { s ->
            s.token()
            fun time(name: String, n: Int, call: () -> Any?) {
                repeat(n / 2) { call() }
                val t0 = System.nanoTime()
                repeat(n) { call() }
                println("kotlin: $name through the binding: ${(System.nanoTime() - t0) / n} ns/call ($n calls)")
            }
            time("current()", 200_000) { s.current() }
            time("id() (no buffer, for comparison)", 200_000) { s.id() }
        }
    }
}
