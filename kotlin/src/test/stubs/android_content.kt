// Stand-in (compile checks only, see README.md): android.content.Context.
package android.content

abstract class Context {
    abstract val applicationContext: Context
    abstract fun <T> getSystemService(serviceClass: Class<T>): T?
}
