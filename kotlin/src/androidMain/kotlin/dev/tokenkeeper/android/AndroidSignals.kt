// Optional Android glue: app lifecycle and connectivity → Keeper.resumed() / networkAvailable().
// Android-only (src/androidMain, compiled into the AAR by build.gradle.kts, not into the JVM jar).
// The helpers only call the keeper; what a signal does to the sessions is the core's business.
package dev.tokenkeeper.android

import android.Manifest
import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import androidx.annotation.MainThread
import androidx.annotation.RequiresPermission
import androidx.lifecycle.DefaultLifecycleObserver
import androidx.lifecycle.Lifecycle
import androidx.lifecycle.LifecycleOwner
import androidx.lifecycle.ProcessLifecycleOwner
import dev.tokenkeeper.Keeper

/**
 * Calls [Keeper.resumed] each time the app comes to the foreground (`ON_START` of
 * [ProcessLifecycleOwner]: the first activity started, not each activity), so that sessions
 * re-check their deadlines at once after the phone slept or the app sat in the background.
 *
 * Attaching while the app is already in the foreground calls `resumed()` once at once, which
 * changes nothing for sessions that are on schedule.
 */
class ForegroundSignal(
    private val keeper: Keeper,
    private val lifecycle: Lifecycle = ProcessLifecycleOwner.get().lifecycle,
) {
    private val observer = object : DefaultLifecycleObserver {
        override fun onStart(owner: LifecycleOwner) {
            keeper.resumed()
        }
    }

    /** Starts forwarding. Idempotent. */
    @MainThread
    fun attach() {
        lifecycle.addObserver(observer)
    }

    /** Stops forwarding. Idempotent. */
    @MainThread
    fun detach() {
        lifecycle.removeObserver(observer)
    }
}

/**
 * Calls [Keeper.networkAvailable] when connectivity comes back or changes: the default network
 * became another one (Wi-Fi to mobile data, or back after none), or it passed Android's
 * internet check (`NET_CAPABILITY_VALIDATED`, e.g. after a captive-portal sign-in). Pending
 * retries then run at once, and a fetch stuck on the old network is retried beside it.
 *
 * It signals once per change, not on every capability update Android sends (bandwidth and
 * signal changes arrive often, and each signal may start a fetch), nor for the network that is
 * already the default when it attaches.
 *
 * Needs `<uses-permission android:name="android.permission.ACCESS_NETWORK_STATE"/>` in the app
 * manifest (a normal permission, granted at install).
 */
class NetworkSignal(private val keeper: Keeper, context: Context) {
    private val connectivity = requireNotNull(context.applicationContext.getSystemService(ConnectivityManager::class.java)) {
        "this device has no ConnectivityManager"
    }
    private val lock = Any()
    private var attached = false
    /** The default network as last seen (null: none). */
    private var current: Network? = null
    /** Whether [current] passed the internet check in its last capabilities (null: none seen yet). */
    private var validated: Boolean? = null

    private val callback = object : ConnectivityManager.NetworkCallback() {
        override fun onAvailable(network: Network) {
            val changed = synchronized(lock) {
                val changed = network != current
                if (changed) {
                    current = network
                    validated = null
                }
                changed
            }
            if (changed) keeper.networkAvailable()
        }

        override fun onCapabilitiesChanged(network: Network, networkCapabilities: NetworkCapabilities) {
            val isValidated = networkCapabilities.hasCapability(NetworkCapabilities.NET_CAPABILITY_VALIDATED)
            val becameValidated = synchronized(lock) {
                if (network != current) return
                val was = validated
                validated = isValidated
                was == false && isValidated
            }
            if (becameValidated) keeper.networkAvailable()
        }

        override fun onLost(network: Network) {
            synchronized(lock) {
                if (network == current) {
                    current = null
                    validated = null
                }
            }
        }
    }

    /** Starts forwarding (registers a default-network callback). Idempotent. */
    @RequiresPermission(Manifest.permission.ACCESS_NETWORK_STATE)
    fun attach() {
        synchronized(lock) {
            if (attached) return
            attached = true
            current = connectivity.activeNetwork
            validated = null
        }
        connectivity.registerDefaultNetworkCallback(callback)
    }

    /** Stops forwarding (unregisters the callback). Idempotent. */
    fun detach() {
        synchronized(lock) {
            if (!attached) return
            attached = false
        }
        connectivity.unregisterNetworkCallback(callback)
    }
}

/**
 * Both signals for one keeper: [ForegroundSignal] and [NetworkSignal]. `close()` detaches
 * them.
 *
 * ```kotlin
 * class App : Application() {
 *     val keeper by lazy { Keeper() }
 *     override fun onCreate() {
 *         super.onCreate()
 *         keeper.attachAndroidSignals(this)   // keep the result to detach it, e.g. in tests
 *     }
 * }
 * ```
 */
class AndroidSignals(keeper: Keeper, context: Context) : AutoCloseable {
    val foreground = ForegroundSignal(keeper)
    val network = NetworkSignal(keeper, context)

    /** Attaches both. Idempotent. */
    @MainThread
    @RequiresPermission(Manifest.permission.ACCESS_NETWORK_STATE)
    fun attach(): AndroidSignals {
        foreground.attach()
        network.attach()
        return this
    }

    /** Detaches both. Idempotent. */
    @MainThread
    fun detach() {
        foreground.detach()
        network.detach()
    }

    @MainThread
    override fun close() = detach()
}

/** Forwards app foreground and connectivity changes to this keeper ([AndroidSignals]). Call on the main thread. */
@MainThread
@RequiresPermission(Manifest.permission.ACCESS_NETWORK_STATE)
fun Keeper.attachAndroidSignals(context: Context): AndroidSignals = AndroidSignals(this, context).attach()
