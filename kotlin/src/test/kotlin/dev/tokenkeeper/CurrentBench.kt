// Timing loop for the note (not a test): cost of Session.current() through the binding.
// Reports wall time and the calling thread's CPU time per call (best of 5 rounds, after a JIT
// warm-up): on a loaded machine the wall figure also counts time the thread waited for a CPU,
// and JNA's per-call Structure/Memory allocations are freed by the JVM's cleaner threads, whose
// work shows in neither figure but competes for the same cores.
package dev.tokenkeeper

import java.lang.management.ManagementFactory
import kotlinx.coroutines.runBlocking

fun main() = runBlocking {
    val token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJl"
    val cpu = ManagementFactory.getThreadMXBean()
    Keeper().use { keeper ->
        keeper.openSession(SessionConfig(SessionSpec("bench", "u1")), tokenSource { FetchedToken(Secret(token)) }).useSession { s ->
            s.token()
            fun time(name: String, n: Int, call: () -> Any?) {
                repeat(n) { call() } // JIT warm-up
                var bestWall = Long.MAX_VALUE
                var bestCpu = Long.MAX_VALUE
                repeat(5) {
                    val c0 = cpu.currentThreadCpuTime
                    val t0 = System.nanoTime()
                    repeat(n) { call() }
                    bestWall = minOf(bestWall, (System.nanoTime() - t0) / n)
                    bestCpu = minOf(bestCpu, (cpu.currentThreadCpuTime - c0) / n)
                }
                println("kotlin: $name through the binding: $bestWall ns/call wall, $bestCpu ns/call CPU of the caller (best of 5 × $n calls)")
            }
            time("current()", 100_000) { s.current() }
            time("id() (no buffer, for comparison)", 100_000) { s.id() }
            // What every call allocates at least once (the generated code's call status, a JNA
            // Structure: reflection, malloc, a cleaner registration), without any FFI call.
            time("one JNA call-status allocation (no call)", 100_000) { UniffiRustCallStatus.ByValue() }
        }
    }
}
