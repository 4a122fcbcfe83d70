// Stand-in (compile checks only, see README.md): OkHttp 4.
package okhttp3

import java.io.Closeable

class MediaType {
    companion object {
        fun String.toMediaType(): MediaType = MediaType()
    }
}

abstract class RequestBody {
    companion object {
        fun String.toRequestBody(contentType: MediaType? = null): RequestBody = throw UnsupportedOperationException("stand-in")
    }
}

abstract class ResponseBody : Closeable {
    abstract fun string(): String
}

abstract class Response : Closeable {
    abstract val code: Int
    abstract val message: String
    abstract val isSuccessful: Boolean
    abstract val body: ResponseBody?
    abstract fun header(name: String): String?
}

interface Call {
    fun execute(): Response
}

class Request private constructor() {
    class Builder {
        fun url(url: String): Builder = this
        fun header(name: String, value: String): Builder = this
        fun post(body: RequestBody): Builder = this
        fun build(): Request = Request()
    }
}

open class OkHttpClient {
    open fun newCall(request: Request): Call = throw UnsupportedOperationException("stand-in")
    open fun newBuilder(): Builder = Builder()

    class Builder {
        fun callTimeout(duration: java.time.Duration): Builder = this
        fun build(): OkHttpClient = OkHttpClient()
    }
}
