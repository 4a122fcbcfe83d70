/// Keeps short-lived real-time access tokens (Agora AccessToken2, ZEGO Token04, HS256 JWT,
/// OAuth) alive: fetches them with your HTTP client, renews them before they expire, retries
/// with backoff, and reports every step as a [Stream].
///
/// ```dart
/// await initTokenKeeper();
/// final keeper = TokenKeeper();
/// final session = keeper.openSession(
///   options: SessionOptions(channel: 'live-42', user: '1001', role: 'publisher'),
///   fetch: tokenSource(myBackend.fetchRtcToken),
/// );
/// final issued = await session.token();
/// ```
///
/// The lifecycle runs in the tokenkeeper Rust core; the classes exported here come from it
/// through flutter_rust_bridge (generated, in `src/rust/`), plus a small hand-written layer
/// (`src/`) for what Dart idioms need: loading the native library and turning exceptions
/// thrown by your token source into typed outcomes.
library;

// What initTokenKeeper() takes, so that apps need no import of flutter_rust_bridge themselves.
export 'package:flutter_rust_bridge/flutter_rust_bridge_for_generated.dart'
    show ExternalLibrary;

export 'src/init.dart';
export 'src/rust/api/config.dart';
export 'src/rust/api/error.dart';
export 'src/rust/api/events.dart';
export 'src/rust/api/inspect.dart';
export 'src/rust/api/keeper.dart';
export 'src/rust/api/source.dart';
export 'src/token_source.dart';
