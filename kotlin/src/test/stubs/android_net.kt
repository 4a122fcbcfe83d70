// Stand-in (compile checks only, see README.md): android.net connectivity (API 24+).
package android.net

class Network

class NetworkCapabilities {
    fun hasCapability(capability: Int): Boolean = false

    companion object {
        const val NET_CAPABILITY_INTERNET = 12
        const val NET_CAPABILITY_VALIDATED = 16
    }
}

abstract class ConnectivityManager {
    abstract val activeNetwork: Network?
    abstract fun registerDefaultNetworkCallback(networkCallback: NetworkCallback)
    abstract fun unregisterNetworkCallback(networkCallback: NetworkCallback)

    open class NetworkCallback {
        open fun onAvailable(network: Network) {}
        open fun onCapabilitiesChanged(network: Network, networkCapabilities: NetworkCapabilities) {}
        open fun onLost(network: Network) {}
    }
}
