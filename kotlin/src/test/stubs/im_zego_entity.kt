// Stand-in (compile checks only, see README.md): ZEGO Express entities.
package im.zego.zegoexpress.entity

class ZegoUser(@JvmField var userID: String?)

class ZegoRoomConfig {
    @JvmField var token: String? = null
}
