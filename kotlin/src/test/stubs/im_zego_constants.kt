// Stand-in (compile checks only, see README.md): ZEGO Express constants.
package im.zego.zegoexpress.constants

enum class ZegoRoomStateChangedReason { LOGINING, LOGINED, LOGIN_FAILED, RECONNECTING, RECONNECTED, RECONNECT_FAILED, KICK_OUT, LOGOUT, LOGOUT_FAILED }
