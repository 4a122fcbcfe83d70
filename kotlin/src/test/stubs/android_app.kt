// Stand-in (compile checks only, see README.md): android.app.Application (a ContextWrapper).
package android.app

import android.content.Context

open class Application : Context() {
    override val applicationContext: Context get() = this
    override fun <T> getSystemService(serviceClass: Class<T>): T? = null
    open fun onCreate() {}
}
