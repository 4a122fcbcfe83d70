// The app around the README's snippets (compile checks only, see README.md): the names they use
// without declaring them. scripts/test-kotlin.sh wraps each snippet in a function of package
// `readme`, so a snippet may shadow any of these with its own declaration.
package readme

import android.content.Context
import dev.tokenkeeper.Keeper
import dev.tokenkeeper.Session
import dev.tokenkeeper.TokenKeeperException
import dev.tokenkeeper.TokenSource
import im.zego.zegoexpress.ZegoExpressEngine
import io.agora.rtc2.RtcEngine
import kotlinx.coroutines.CoroutineScope
import okhttp3.OkHttpClient

lateinit var keeper: Keeper
lateinit var session: Session
lateinit var source: TokenSource
lateinit var appScope: CoroutineScope
lateinit var context: Context

lateinit var rtcEngine: RtcEngine
var channel = "live-42"
var uid = 1001

lateinit var engine: ZegoExpressEngine
var roomID = "room-42"
var userID = "1001"

val okHttp = OkHttpClient()
const val TOKEN_URL = "https://api.example.com/rtc/token"
var userSession = "the app's own sign-in token"

fun showError(error: TokenKeeperException?) {}
fun showSignIn() {}
fun showLive() {}
