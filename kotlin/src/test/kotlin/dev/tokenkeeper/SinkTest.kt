// One path from backend to engine: sessions with a sink drive fake Agora-like engines, against
// the reference backend failing 25 % of token requests, in real time with 6-second tokens.
package dev.tokenkeeper

import java.time.Duration
import java.util.Collections
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import org.junit.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlin.test.fail

class SinkTest {
    /** One session and its engine, and what they did up to a quiet moment at the end. */
    class EngineRun(
        val name: String,
        val engine: FakeEngine,
        val warnBefore: Duration,
        val source: KotlinHttpSource,
        val session: Session,
        val events: MutableList<SessionEvent>,
    ) {
        lateinit var delivered: List<String>
        lateinit var applied: List<String>
        lateinit var calls: List<SourceCall>
        lateinit var counters: Counters
        lateinit var state: SessionState

        /**
         * Records the run at a moment when the session is valid, the source has delivered
         * nothing new for 300 ms and the session reports every token applied, so that a
         * renewal in flight does not read as a lost token.
         */
        fun snapshot() {
            repeat(100) {
                val before = source.delivered()
                Thread.sleep(300)
                val counters = session.counters()
                val state = session.state()
                val after = source.delivered()
                if (before == after && state == SessionState.VALID && counters.applies + 1uL == after.size.toULong()) {
                    this.delivered = after
                    this.applied = engine.applied()
                    this.calls = source.callLog()
                    this.counters = counters
                    this.state = state
                    return
                }
            }
            fail("$name: no quiet moment in 30 s: state ${session.state()}, ${session.counters()}, " +
                "${source.delivered().size} tokens delivered, ${engine.applied().size} applied")
        }
    }

    companion object {
        const val TTL_SECS = 6
        /** The session's renew lead and the engine's warning: Agora's 30 s, scaled to 6-second tokens. */
        val LEAD: Duration = Duration.ofMillis(1_500)
        /** An engine that warns before the session's own schedule, so its callback starts renewals. */
        val EARLY: Duration = Duration.ofMillis(3_500)
        const val RUN_MS = 20_000L
        /** Timer and clock-read slack when comparing a fetch's start with a planned instant. */
        const val SLACK_MS = 100L

        val runs: Map<String, EngineRun> by lazy { runScenario() }

        private fun runScenario(): Map<String, EngineRun> {
            val engines = listOf(
                Triple("agora-1", FakeEngine(LEAD), LEAD),
                Triple("agora-2", FakeEngine(LEAD), LEAD),
                Triple("early-warning-1", FakeEngine(EARLY), EARLY),
                Triple("early-warning-2", FakeEngine(EARLY), EARLY),
                Triple("not-ready", FakeEngine(LEAD, refuseFirst = 1), LEAD),
                Triple("stale-late", FakeEngine(LEAD, reportStaleLate = true), LEAD),
            )
            val users = engines.map { Backend.userWithStream() }
            val keeper = Keeper(Policy(renewLead = LEAD))
            val runs = engines.zip(users).map { (e, u) ->
                val (name, engine, warnBefore) = e
                val (user, channel) = u
                val source = KotlinHttpSource(user.apiKey, ttlSecs = TTL_SECS)
                // The README's Agora sink: a non-zero result means the engine did not take it.
                val sink = tokenSink { issued ->
                    val code = engine.renewToken(issued.token.expose())
                    check(code == 0) { "renewToken returned $code" }
                }
                val session = keeper.openSession(SessionConfig(SessionSpec(channel, user.id, role = "publisher")), source, sink)
                engine.session = session
                val events = Collections.synchronizedList(mutableListOf<SessionEvent>())
                session.addListener(eventListener { events.add(it) })
                EngineRun(name, engine, warnBefore, source, session, events)
            }
            Backend.withFaults(errorRate = 0.25, latencyMs = 150) {
                runBlocking {
                    runs.map { run -> async { run.engine.joinChannel(run.session.token().token.expose()) } }.awaitAll()
                }
                Thread.sleep(RUN_MS)
                runs.forEach { it.snapshot() }
                assertTrue(keeper.flushListeners(Duration.ofSeconds(5)), "listeners caught up")
            }
            runs.forEach {
                it.engine.finish()
                it.session.closeSession()
            }
            keeper.close()
            for (r in runs) {
                System.err.println("sink: ${r.name}: ${r.applied.size} tokens applied (join included), " +
                    "${r.counters.fetches} fetches (${r.counters.failures} failed), ${r.engine.warnings} engine warnings, " +
                    "${r.counters.applyFailures} refused applies, ${r.engine.expiredMs} ms expired in the engine")
            }
            return runs.associateBy { it.name }
        }

        /** Exactly once, in order, never expired, one successful fetch per token. */
        fun assertOnePathToTheEngine(run: EngineRun) {
            val n = run.delivered.size
            assertTrue(n >= 4, "${run.name}: at least 3 renewals in ${RUN_MS / 1000} s, got ${n - 1}: ${run.counters}")
            // Compared as positions in the fetch order, so that a failure prints no token.
            assertEquals((0 until n).toList(), run.applied.map { run.delivered.indexOf(it) },
                "${run.name}: every token fetched reached the engine once, in order (-1: never fetched)")
            assertEquals(0, run.engine.outOfOrder, "${run.name}: no token twice, none older than the one it replaced")
            assertEquals(0L, run.engine.expiredMs, "${run.name}: the engine never held an expired token")
            assertEquals(0, run.engine.requestTokens, "${run.name}: no 'request token' callback")
            assertEquals((n - 1).toULong(), run.counters.applies, "${run.name}: ${run.counters}")
            assertEquals((n - 1).toULong(), run.counters.renewals, "${run.name}: ${run.counters}")
            assertEquals(run.calls.size.toULong(), run.counters.fetches, "${run.name}: every fetch reached the source")
            assertEquals(n.toULong(), run.counters.fetches - run.counters.failures,
                "${run.name}: one successful fetch per token: ${run.counters}")
            assertEquals(Duration.ZERO, run.counters.timeWithoutToken, "${run.name}: ${run.counters}")
            assertEquals(SessionState.VALID, run.state)
        }

        /**
         * No fetch starts before the token it replaces is due: neither the session's own plan
         * for it (`Issued.renewAt`) nor the engine's "will expire" for it has come. A second
         * fetch in one cycle (the callback after the schedule, or a stale report) would replace
         * a token that was just issued, long before either.
         */
        fun assertNoFetchBeforeItsCycle(run: EngineRun) {
            val issued = synchronized(run.events) { run.events.map { it.kind }.filterIsInstance<EventKind.Issued>() }
            assertTrue(issued.size >= run.delivered.size, "${run.name}: an Issued event per token")
            for (call in run.calls) {
                val previous = call.previous ?: continue
                val j = run.delivered.indexOf(previous)
                assertTrue(j >= 0, "${run.name}: a fetch replaces a token the source delivered")
                val plannedAt = issued[j].renewAt.toEpochMilli()
                val warnedAt = inspect(previous).expiresAt!!.toEpochMilli() - run.warnBefore.toMillis()
                val due = minOf(plannedAt, warnedAt)
                assertTrue(call.startedAtMs >= due - SLACK_MS,
                    "${run.name}: a ${call.reason} fetch (attempt ${call.attempt}) for token #$j started " +
                        "${due - call.startedAtMs} ms before that token was due for renewal")
            }
        }
    }

    @Test
    fun everyTokenReachesTheEngineOnceInOrderAndNeverExpired() {
        val all = runs.values
        assertTrue(all.sumOf { it.counters.failures } >= 3uL, "the backend failed requests: ${all.map { it.counters }}")
        for (name in listOf("agora-1", "agora-2", "early-warning-1", "early-warning-2")) {
            assertOnePathToTheEngine(runs.getValue(name))
        }
    }

    @Test
    fun theEngineCallbackAndTheScheduleMakeOneFetchPerCycle() {
        for (run in runs.values) assertNoFetchBeforeItsCycle(run)
        for (name in listOf("early-warning-1", "early-warning-2")) {
            val run = runs.getValue(name)
            assertTrue(run.engine.warnings >= 3, "$name: the engine warned before each renewal: ${run.engine.warnings}")
            val cycles = run.calls.filter { it.attempt == 1u && it.previous != null }
            assertTrue(cycles.any { it.reason == FetchReason.FORCED },
                "$name: the engine's early warning started renewals: ${cycles.map { it.reason }}")
        }
    }

    @Test
    fun anEngineThatIsNotReadyGetsTheSameTokenAgainWithoutAnotherFetch() {
        val run = runs.getValue("not-ready")
        assertOnePathToTheEngine(run)
        assertNoFetchBeforeItsCycle(run)
        assertEquals(1, run.engine.refused)
        assertEquals(1uL, run.counters.applyFailures)
        val failed = synchronized(run.events) { run.events.map { it.kind }.filterIsInstance<EventKind.ApplyFailed>() }
        assertEquals(1, failed.size, "one ApplyFailed event: $failed")
        assertEquals(1u, failed[0].attempt)
        assertTrue(failed[0].message.contains("renewToken returned -7"), failed[0].message)
    }

    @Test
    fun lateReportsAboutAReplacedTokenChangeNothing() {
        val run = runs.getValue("stale-late")
        assertTrue(run.engine.lateReports >= 3, "late reports made: ${run.engine.lateReports}")
        assertOnePathToTheEngine(run)
        assertNoFetchBeforeItsCycle(run)
        assertEquals(0uL, run.counters.rejections, "${run.counters}")
        assertEquals(0uL, run.counters.emergencyFetches, "${run.counters}")
    }
}
