// Stand-in (compile checks only, see README.md): android.Manifest.
package android

class Manifest {
    class permission {
        companion object {
            const val ACCESS_NETWORK_STATE = "android.permission.ACCESS_NETWORK_STATE"
        }
    }
}
