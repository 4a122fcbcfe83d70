// Stand-in (compile checks only, see README.md): ZEGO Express SDK for Android.
package im.zego.zegoexpress

import im.zego.zegoexpress.callback.IZegoEventHandler
import im.zego.zegoexpress.entity.ZegoRoomConfig
import im.zego.zegoexpress.entity.ZegoUser

abstract class ZegoExpressEngine {
    abstract fun setEventHandler(eventHandler: IZegoEventHandler?)
    abstract fun loginRoom(roomID: String?, user: ZegoUser?, config: ZegoRoomConfig?)
    abstract fun renewToken(roomID: String?, token: String?)
}
