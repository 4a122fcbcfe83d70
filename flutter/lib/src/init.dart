import 'dart:io' show Directory, File, Platform;
import 'dart:isolate' show Isolate;

import 'package:flutter_rust_bridge/flutter_rust_bridge_for_generated.dart'
    show ExternalLibrary;

import 'rust/frb_generated.dart';

/// Loads the tokenkeeper native library and starts the bridge. Call once, before any other
/// tokenkeeper API (e.g. in `main()` after `WidgetsFlutterBinding.ensureInitialized()`).
///
/// Without [library] it is found where the plugin's build put it:
/// - Android: `libtokenkeeper_frb.so`, built by the plugin during `flutter build`/`flutter run`
///   (or prebuilt by `scripts/build-native.sh android`) and packaged into the app.
/// - iOS: the static library linked into the app by the plugin's pod, looked up in
///   `tokenkeeper_frb.framework` (pods built as frameworks, Flutter's default), else among the
///   app's own symbols.
/// - Linux, macOS, Windows (`flutter test`, desktop tools): the library cargo built in the
///   workspace around this package (`cargo build -p tokenkeeper-frb [--release]`): the directory
///   in the environment variable `TOKENKEEPER_LIB_DIR` if set, else `<workspace>/target/release/`,
///   then `<workspace>/target/debug/`. Throws a [StateError] naming the places it looked if none
///   holds the library.
///
/// Pass [library] to load it from elsewhere, e.g.
/// `initTokenKeeper(library: ExternalLibrary.open('/opt/tk/libtokenkeeper_frb.so'))`
/// ([ExternalLibrary] is exported by `package:tokenkeeper/tokenkeeper.dart`).
///
/// Calling it again is a no-op.
Future<void> initTokenKeeper({ExternalLibrary? library}) async {
  if (_initialized) return;
  await TokenKeeperLib.init(externalLibrary: library ?? await _defaultLibrary());
  _initialized = true;
}

bool _initialized = false;

Future<ExternalLibrary> _defaultLibrary() async {
  if (Platform.isAndroid) {
    return ExternalLibrary.open('libtokenkeeper_frb.so');
  }
  if (Platform.isIOS) {
    try {
      return ExternalLibrary.open('tokenkeeper_frb.framework/tokenkeeper_frb');
    } catch (_) {
      // Static pods (or the prebuilt XCFramework): the symbols are in the app binary.
      return ExternalLibrary.process(iKnowHowToUseIt: true);
    }
  }
  return ExternalLibrary.open((await _hostLibraryFile()).path);
}

/// The library cargo built for this machine (see [initTokenKeeper]).
Future<File> _hostLibraryFile() async {
  final String name;
  if (Platform.isMacOS) {
    name = 'libtokenkeeper_frb.dylib';
  } else if (Platform.isWindows) {
    name = 'tokenkeeper_frb.dll';
  } else {
    name = 'libtokenkeeper_frb.so';
  }
  final dirs = <Uri>[];
  final fromEnv = Platform.environment['TOKENKEEPER_LIB_DIR'];
  if (fromEnv != null && fromEnv.isNotEmpty) {
    dirs.add(Directory(fromEnv).uri);
  }
  final workspace = await _workspaceRoot();
  dirs
    ..add(workspace.resolve('target/release/'))
    ..add(workspace.resolve('target/debug/'));
  for (final dir in dirs) {
    final file = File.fromUri(dir.resolve(name));
    if (file.existsSync()) {
      return file;
    }
  }
  throw StateError('tokenkeeper: $name not found in ${dirs.map((d) => d.toFilePath()).join(', ')}; '
      'build it with `cargo build -p tokenkeeper-frb` in the repository, set TOKENKEEPER_LIB_DIR, '
      'or pass `library:` to initTokenKeeper()');
}

/// The Cargo workspace this package lives in: the parent of the package's root directory.
Future<Uri> _workspaceRoot() async {
  final entry =
      await Isolate.resolvePackageUri(Uri.parse('package:tokenkeeper/tokenkeeper.dart'));
  if (entry != null && entry.isScheme('file')) {
    // <workspace>/flutter/lib/tokenkeeper.dart
    return entry.resolve('../../');
  }
  // No package resolution (compiled ahead of time): assume the package directory is current,
  // as it is for `flutter test`.
  return Directory.current.uri.resolve('../');
}
