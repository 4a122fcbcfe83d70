// Stand-in (compile checks only, see README.md): Agora RTC SDK 4.x for Android (io.agora.rtc2).
package io.agora.rtc2

class ChannelMediaOptions

abstract class IRtcEngineEventHandler {
    open fun onTokenPrivilegeWillExpire(token: String?) {}
    open fun onRequestToken() {}
}

abstract class RtcEngine {
    abstract fun joinChannel(token: String?, channelId: String?, uid: Int, options: ChannelMediaOptions?): Int
    abstract fun renewToken(token: String?): Int
    abstract fun addHandler(handler: IRtcEngineEventHandler?): Boolean
}
