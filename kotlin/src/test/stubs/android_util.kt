// Stand-in (compile checks only, see README.md): android.util.Log.
package android.util

object Log {
    const val VERBOSE = 2
    const val DEBUG = 3
    const val INFO = 4
    const val WARN = 5
    const val ERROR = 6

    fun println(priority: Int, tag: String?, msg: String): Int = 0
    fun w(tag: String?, msg: String): Int = 0
}
