// Tests of `addListener`'s delivery (`listenSafely`), which needs no native library: events come
// from a StreamController instead of the SDK.
// Run with `flutter test` (not run on the machine that produced this package: no Flutter SDK).
import 'dart:async';

import 'package:flutter_test/flutter_test.dart';
import 'package:tokenkeeper/src/listeners.dart';
import 'package:tokenkeeper/tokenkeeper.dart';

SessionEvent _event(EventKind kind) => SessionEvent(
      sessionId: 1,
      session: const SessionSpec(channel: 'live-1', user: 'alice'),
      at: DateTime.utc(2025, 1, 1),
      kind: kind,
    );

void main() {
  test('a listener that throws keeps receiving events, in order', () async {
    final events = StreamController<SessionEvent>();
    final seen = <EventKind>[];
    final errors = <Object>[];
    listenSafely(events.stream, (e) {
      seen.add(e.kind);
      if (e.kind == EventKind.issued) throw StateError('listener bug');
    }, onListenerError: (error, _) => errors.add(error));
    events
      ..add(_event(EventKind.issued))
      ..add(_event(EventKind.applied));
    await events.close();
    await pumpEventQueue();
    expect(seen, [EventKind.issued, EventKind.applied]);
    expect(errors.single, isA<StateError>());
  });

  test('an async listener whose Future fails is reported, not uncaught', () async {
    final events = StreamController<SessionEvent>();
    final errors = <Object>[];
    listenSafely(events.stream, (e) async => throw StateError('async listener bug'),
        onListenerError: (error, _) => errors.add(error));
    events.add(_event(EventKind.willExpire));
    await events.close();
    await pumpEventQueue();
    expect(errors.single, isA<StateError>());
  });

  test('remove() stops delivery', () async {
    final events = StreamController<SessionEvent>();
    final seen = <EventKind>[];
    final registration = listenSafely(events.stream, (e) => seen.add(e.kind));
    events.add(_event(EventKind.issued));
    await pumpEventQueue();
    await registration.remove();
    events.add(_event(EventKind.applied));
    await pumpEventQueue();
    expect(seen, [EventKind.issued]);
  });
}
