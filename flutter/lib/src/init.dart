import 'dart:io' show Platform;

import 'package:flutter_rust_bridge/flutter_rust_bridge_for_generated.dart'
    show ExternalLibrary;

import 'rust/frb_generated.dart';

/// Loads the tokenkeeper native library and starts the bridge. Call once, before any other
/// tokenkeeper API (e.g. in `main()` after `WidgetsFlutterBinding.ensureInitialized()`).
///
/// - Android: opens `libtokenkeeper_frb.so`, packaged from `android/src/main/jniLibs/` (see
///   `scripts/build-native.sh android`).
/// - iOS: the static library is linked into the app (see `scripts/build-native.sh ios`), so
///   its symbols are looked up in the process.
/// - Other platforms (desktop tests): flutter_rust_bridge's default lookup, or pass
///   [library] yourself, e.g. `ExternalLibrary.open('target/release/libtokenkeeper_frb.so')`.
///
/// Calling it again is a no-op.
Future<void> initTokenKeeper({ExternalLibrary? library}) async {
  if (_initialized) return;
  ExternalLibrary? lib = library;
  if (lib == null) {
    if (Platform.isAndroid) {
      lib = ExternalLibrary.open('libtokenkeeper_frb.so');
    } else if (Platform.isIOS) {
      lib = ExternalLibrary.process(iKnowHowToUseIt: true);
    }
  }
  await TokenKeeperLib.init(externalLibrary: lib);
  _initialized = true;
}

bool _initialized = false;
