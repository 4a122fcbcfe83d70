// Stand-in (compile checks only, see README.md): androidx.lifecycle 2.8 (lifecycle-common,
// lifecycle-process).
package androidx.lifecycle

interface LifecycleObserver

interface LifecycleOwner {
    val lifecycle: Lifecycle
}

abstract class Lifecycle {
    abstract fun addObserver(observer: LifecycleObserver)
    abstract fun removeObserver(observer: LifecycleObserver)
}

interface DefaultLifecycleObserver : LifecycleObserver {
    fun onCreate(owner: LifecycleOwner) {}
    fun onStart(owner: LifecycleOwner) {}
    fun onResume(owner: LifecycleOwner) {}
    fun onPause(owner: LifecycleOwner) {}
    fun onStop(owner: LifecycleOwner) {}
    fun onDestroy(owner: LifecycleOwner) {}
}

class ProcessLifecycleOwner private constructor() : LifecycleOwner {
    override val lifecycle: Lifecycle get() = throw UnsupportedOperationException("stand-in")

    companion object {
        @JvmStatic
        fun get(): LifecycleOwner = throw UnsupportedOperationException("stand-in")
    }
}
