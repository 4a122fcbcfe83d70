/// Keeps short-lived real-time access tokens (Agora AccessToken2, ZEGO Token04, HS256 JWT,
/// OAuth) alive: fetches them with your HTTP client (or the built-in one), renews them before
/// they expire, retries with backoff, hands each new token to your RTC engine, and reports every
/// step as a [Stream].
///
/// ```dart
/// await initTokenKeeper();
/// final keeper = Keeper();
/// final session = keeper.openSession(
///   config: SessionConfig(spec: const SessionSpec(channel: 'live-42', user: '1001', role: 'publisher')),
///   source: tokenSource(myBackend.fetchRtcToken),
///   sink: (t) => engine.renewToken(t.token),
/// );
/// await engine.joinChannel(token: (await session.token()).token, channelId: 'live-42', uid: 1001,
///     options: const ChannelMediaOptions());
/// ```
///
/// The lifecycle runs in the tokenkeeper Rust core; the classes exported here come from it
/// through flutter_rust_bridge (generated, in `src/rust/`), plus a small hand-written layer
/// (`src/`) for what Dart idioms need: loading the native library, turning exceptions thrown by
/// your token source into typed outcomes, listeners, and app lifecycle and network glue.
library;

// What initTokenKeeper() takes, so that apps need no import of flutter_rust_bridge themselves.
export 'package:flutter_rust_bridge/flutter_rust_bridge_for_generated.dart'
    show ExternalLibrary;

export 'src/app_signals.dart';
export 'src/init.dart';
export 'src/listeners.dart' hide listenSafely;
export 'src/rust/api/config.dart';
export 'src/rust/api/error.dart';
export 'src/rust/api/events.dart';
export 'src/rust/api/http.dart';
export 'src/rust/api/inspect.dart';
export 'src/rust/api/keeper.dart';
export 'src/rust/api/logging.dart';
export 'src/rust/api/source.dart';
export 'src/token_source.dart';
