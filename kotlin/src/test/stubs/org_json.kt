// Stand-in (compile checks only, see README.md): org.json as on Android.
package org.json

class JSONObject() {
    constructor(json: String) : this()

    fun put(name: String, value: Any?): JSONObject = this
    fun getString(name: String): String = throw UnsupportedOperationException("stand-in")
    fun optLong(name: String): Long = 0
    override fun toString(): String = "{}"
}
