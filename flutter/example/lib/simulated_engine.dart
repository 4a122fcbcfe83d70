// An RTC engine stand-in that behaves as Agora's does, so the QA app shows the whole token flow
// without an Agora or ZEGO account. With the real SDKs the wiring is the same three lines (see
// ../../README.md, "Wire it to your RTC engine"):
//
//   sink: (t) => engine.renewToken(t.token),                                 // openSession
//   onTokenPrivilegeWillExpire: (c, token) => session.onTokenWillExpire(token: token),
//   onRequestToken: (c) => session.onTokenExpired(),
//
// No code here (or anywhere in the app) forwards a token: the session hands each new token to
// [SimulatedEngine.renewToken] through its sink.
import 'dart:async';

import 'package:flutter/foundation.dart';
import 'package:tokenkeeper/tokenkeeper.dart';

/// Holds the token it joined with or was last given, says "will expire" [warnBefore] the
/// token's own expiry (Agora: 30 s) and "request token" at expiry, and counts the time it holds
/// an expired token (a real engine would drop the stream then: this must stay at zero).
class SimulatedEngine extends ChangeNotifier {
  SimulatedEngine({this.warnBefore = const Duration(seconds: 30)});

  /// How long before the held token's expiry the engine says "will expire".
  final Duration warnBefore;

  /// What the engine did, newest first (token prefix and length only).
  final List<String> calls = [];

  /// Tokens handed over through the sink.
  int applies = 0;

  /// `renewToken` calls refused ([refuseNextRenewal]).
  int refused = 0;

  /// Time spent holding an expired token.
  Duration timeExpired = Duration.zero;

  /// When set, the next `renewToken` throws once ("engine not ready"): the session retries it.
  bool refuseNextRenewal = false;

  static const _tick = Duration(milliseconds: 250);

  Session? _session;
  String? _held;
  DateTime? _heldExpiry;
  bool _warned = false;
  bool _requested = false;
  Timer? _timer;

  /// The held token's expiry, as the engine reads it from the token.
  DateTime? get heldExpiry => _heldExpiry;

  /// The held token, shortened for display.
  String get held => _held == null ? 'none' : _short(_held!);

  /// `joinChannel(token)`: the one token the app passes, from `session.token()`.
  void join(Session session, IssuedToken first) {
    _session = session;
    _hold(first, 'joinChannel');
    _timer ??= Timer.periodic(_tick, (_) => _onTick());
  }

  /// `renewToken(token)`: the session's sink.
  Future<void> renewToken(IssuedToken token) async {
    if (refuseNextRenewal) {
      refuseNextRenewal = false;
      refused++;
      _log('renewToken(${_short(token.token)}) refused: not ready');
      notifyListeners();
      throw StateError('simulated engine not ready (-7)');
    }
    applies++;
    _hold(token, 'renewToken');
  }

  /// What the engine's "will expire" callback does, on demand.
  void fireWillExpire() {
    final s = _session, held = _held;
    if (s == null || held == null) return;
    _log('onTokenPrivilegeWillExpire(${_short(held)}) [manual]');
    s.onTokenWillExpire(token: held);
  }

  /// What the engine's "request token" callback does, on demand.
  void fireRequestToken() {
    final s = _session;
    if (s == null) return;
    _log('onRequestToken [manual]');
    s.onTokenExpired();
  }

  void _hold(IssuedToken token, String call) {
    _held = token.token;
    _heldExpiry = _expiryOf(token);
    _warned = false;
    _requested = false;
    _log('$call(${_short(token.token)})');
    notifyListeners();
  }

  void _onTick() {
    final s = _session, held = _held, expiry = _heldExpiry;
    if (s == null || held == null || expiry == null) return;
    final now = DateTime.now();
    if (!now.isBefore(expiry)) {
      timeExpired += _tick;
      if (!_requested) {
        _requested = true;
        _log('onRequestToken');
        s.onTokenExpired();
      }
      notifyListeners();
    } else if (!_warned && !now.isBefore(expiry.subtract(warnBefore))) {
      _warned = true;
      _log('onTokenPrivilegeWillExpire(${_short(held)})');
      s.onTokenWillExpire(token: held);
    }
  }

  /// The token's own expiry (what an engine goes by), else the session's.
  static DateTime _expiryOf(IssuedToken token) {
    try {
      return inspect(token: token.token).expiresAt ?? token.expiresAt;
    } on TokenKeeperError {
      return token.expiresAt;
    }
  }

  void _log(String what) {
    final time = DateTime.now().toIso8601String().substring(11, 19);
    calls.insert(0, '$time $what');
    if (calls.length > 20) calls.removeLast();
    notifyListeners();
  }

  static String _short(String token) =>
      '${token.substring(0, token.length < 6 ? token.length : 6)}…, len ${token.length}';

  @override
  void dispose() {
    _timer?.cancel();
    super.dispose();
  }
}
