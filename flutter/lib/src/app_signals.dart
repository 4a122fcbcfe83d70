import 'dart:async';

import 'package:flutter/widgets.dart';

import 'rust/api/keeper.dart';

/// Optional glue that tells a [Keeper] about the app's lifecycle and the network. Each helper
/// only calls `resumed()` or `networkAvailable()`; the decisions stay in the SDK.
extension KeeperAppSignals on Keeper {
  /// Calls `resumed()` each time the app returns to the foreground, so every session re-checks
  /// its deadlines against the wall clock at once (a phone that slept two hours replaces its
  /// stale token before the engine notices). Needs the Flutter binding
  /// (`WidgetsFlutterBinding.ensureInitialized()`); dispose the returned listener when the
  /// keeper goes away.
  ///
  /// ```dart
  /// final lifecycle = keeper.listenToAppLifecycle();
  /// // on teardown
  /// lifecycle.dispose();
  /// ```
  AppLifecycleListener listenToAppLifecycle() => AppLifecycleListener(onResume: resumed);

  /// Calls `networkAvailable()` for each change on [changes] after which the device is online
  /// ([isOnline]), so pending retries run at once instead of waiting out their backoff. Takes any
  /// stream, so this package does not depend on a connectivity plugin; with connectivity_plus:
  ///
  /// ```dart
  /// final sub = keeper.listenToConnectivity(
  ///   Connectivity().onConnectivityChanged,
  ///   isOnline: (List<ConnectivityResult> r) => !r.contains(ConnectivityResult.none),
  /// );
  /// // on teardown
  /// await sub.cancel();
  /// ```
  ///
  /// Errors on [changes] are ignored (the plugin's problem, not the session's).
  StreamSubscription<T> listenToConnectivity<T>(Stream<T> changes,
          {required bool Function(T change) isOnline}) =>
      changes.listen((change) {
        if (isOnline(change)) networkAvailable();
      }, onError: (Object _) {});
}
