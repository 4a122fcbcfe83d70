import 'dart:async';
import 'dart:developer' as developer;

import 'package:flutter/foundation.dart' show visibleForTesting;

import 'rust/api/events.dart';
import 'rust/api/keeper.dart';

/// Called for each event, in order: what `addListener` takes.
typedef EventListener = FutureOr<void> Function(SessionEvent event);

/// Returned by `addListener`: [remove] stops the listener. The listener also stops when its
/// session closes (after the `closed` event) or its keeper shuts down.
class ListenerRegistration {
  ListenerRegistration._(this._subscription);

  final StreamSubscription<SessionEvent> _subscription;

  /// Stops the listener; calling it again does nothing.
  Future<void> remove() => _subscription.cancel();
}

/// Listeners on top of `Session.events()`.
extension SessionListeners on Session {
  /// Calls [listener] for each event of this session from now on, in order, on this isolate.
  /// A listener that throws (or whose `Future` fails) is logged (`dart:developer`, name
  /// `tokenkeeper`) and keeps receiving events; it never affects renewals, which run in the
  /// SDK whatever a listener does.
  ///
  /// ```dart
  /// final registration = session.addListener((e) {
  ///   if (e.kind == EventKind.forbidden) leaveChannel(e.message);
  /// });
  /// // later
  /// await registration.remove();
  /// ```
  ListenerRegistration addListener(EventListener listener) =>
      listenSafely(events(), listener);
}

/// Listeners on top of `Keeper.events()`.
extension KeeperListeners on Keeper {
  /// Calls [listener] for each event of every session of this keeper from now on, as
  /// `Session.addListener` does.
  ListenerRegistration addListener(EventListener listener) =>
      listenSafely(events(), listener);
}

/// Listens to [events] with [listener], logging (never rethrowing) what the listener throws.
/// What `addListener` does; public for tests.
@visibleForTesting
ListenerRegistration listenSafely(Stream<SessionEvent> events, EventListener listener,
    {void Function(Object error, StackTrace stack) onListenerError = _log}) {
  void deliver(SessionEvent event) {
    try {
      final result = listener(event);
      if (result is Future<void>) {
        unawaited(result.then((_) {}, onError: onListenerError));
      }
    } catch (error, stack) {
      onListenerError(error, stack);
    }
  }

  return ListenerRegistration._(
      events.listen(deliver, onError: onListenerError, cancelOnError: false));
}

void _log(Object error, StackTrace stack) {
  developer.log('an event listener threw; it keeps receiving events',
      name: 'tokenkeeper', level: 900, error: error, stackTrace: stack);
}
