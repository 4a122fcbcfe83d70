// Stand-in (compile checks only, see README.md): ZEGO Express callbacks.
package im.zego.zegoexpress.callback

import im.zego.zegoexpress.constants.ZegoRoomStateChangedReason
import org.json.JSONObject

abstract class IZegoEventHandler {
    open fun onRoomTokenWillExpire(roomID: String?, remainTimeInSecond: Int) {}
    open fun onRoomStateChanged(roomID: String?, reason: ZegoRoomStateChangedReason?, errorCode: Int, extendedData: JSONObject?) {}
}
