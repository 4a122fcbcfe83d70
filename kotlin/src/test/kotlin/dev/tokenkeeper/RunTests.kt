// Runs the JUnit 4 suites and prints one summary line: "kotlin: N passed, M failed".
package dev.tokenkeeper

import org.junit.runner.JUnitCore
import kotlin.system.exitProcess

fun main() {
    val result = JUnitCore().apply {
        addListener(object : org.junit.runner.notification.RunListener() {
            override fun testFailure(failure: org.junit.runner.notification.Failure) {
                System.err.println("FAIL ${failure.testHeader}: ${failure.message}")
                System.err.println(failure.trace.lineSequence().take(12).joinToString("\n"))
            }
            private var startedAt = 0L
            override fun testStarted(description: org.junit.runner.Description) {
                startedAt = System.nanoTime()
            }
            override fun testFinished(description: org.junit.runner.Description) {
                val secs = (System.nanoTime() - startedAt) / 1e9
                System.err.println("ran ${description.className.substringAfterLast('.')}.${description.methodName} (${"%.1f".format(secs)} s)")
            }
        })
    }.run(
        BindingTest::class.java,
        SessionTest::class.java,
        ReportsAndSignalsTest::class.java,
        ObservationTest::class.java,
        SinkTest::class.java,
    )
    val failed = result.failureCount
    val passed = result.runCount - failed
    println("kotlin: $passed passed, $failed failed")
    exitProcess(if (failed == 0 && result.runCount > 0) 0 else 1)
}
