// How a session drives an RTC engine's token renewal, written against the two calls the
// engines share, so the QA app can show the flow without an Agora or ZEGO account.
//
// With the real SDKs the same three steps are:
//
//   Agora (agora_rtc_engine):
//     onTokenPrivilegeWillExpire: (connection, token) async =>
//         engine.renewToken((await session.renewToken()).token),
//     onRequestToken: (connection) async =>
//         engine.renewToken((await session.tokenExpired()).token),
//
//   ZEGO (zego_express_engine):
//     ZegoExpressEngine.onRoomTokenWillExpire = (roomID, remainTimeInSecond) async =>
//         ZegoExpressEngine.instance.renewToken(roomID, (await session.renewToken()).token);
import 'dart:async';

import 'package:tokenkeeper/tokenkeeper.dart';

/// The engine side of the wiring: where a fresh token goes.
abstract interface class TokenConsumer {
  /// Agora `engine.renewToken(token)`; ZEGO `renewToken(roomID, token)`.
  Future<void> renewToken(String token);
}

/// Connects [session] to [engine]:
/// - [onTokenWillExpire] is what you register as the engine's "token will expire" callback;
/// - [onTokenExpired] is for "token expired / request token";
/// - tokens the session renewed on its own schedule (or after the app resumed) are forwarded
///   too, so the engine never holds a stale one.
class EngineWiring {
  EngineWiring(this.session, this.engine) {
    _sub = session.events().listen((e) {
      if (e.kind == SessionEventKind.issued &&
          (e.reason == FetchReason.scheduled || e.reason == FetchReason.emergency)) {
        final t = session.current();
        if (t != null) engine.renewToken(t.token);
      }
    });
  }

  final TokenSession session;
  final TokenConsumer engine;
  late final StreamSubscription<SessionEvent> _sub;

  /// Agora `onTokenPrivilegeWillExpire` / ZEGO `onRoomTokenWillExpire`.
  Future<void> onTokenWillExpire() async => engine.renewToken((await session.renewToken()).token);

  /// Agora `onRequestToken` (the token already expired).
  Future<void> onTokenExpired() async => engine.renewToken((await session.tokenExpired()).token);

  void dispose() => _sub.cancel();
}

/// A [TokenConsumer] that records what an engine would have received (token prefix and
/// length only), for the QA screen.
class RecordingEngine implements TokenConsumer {
  final List<String> calls = [];
  void Function()? onCall;

  @override
  Future<void> renewToken(String token) async {
    final time = DateTime.now().toIso8601String().substring(11, 19);
    calls.insert(0, '$time engine.renewToken(${token.substring(0, token.length < 6 ? token.length : 6)}…, len ${token.length})');
    if (calls.length > 20) calls.removeLast();
    onCall?.call();
  }
}
