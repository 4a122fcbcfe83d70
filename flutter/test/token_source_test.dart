// Tests of the hand-written Dart layer that need no native library: how `tokenSource()` turns
// what your fetch function does into the outcome the Rust core classifies.
// Run with `flutter test` (not run on the machine that produced this package: no Flutter SDK).
import 'dart:async';

import 'package:flutter_test/flutter_test.dart';
import 'package:tokenkeeper/tokenkeeper.dart';

FetchRequest _request() => const FetchRequest(
      reason: FetchReason.initial,
      session: SessionSpec(channel: 'live-1', user: 'alice'),
      attempt: 1,
      timeout: Duration(seconds: 10),
    );

void main() {
  test('a returned token becomes a success outcome', () async {
    final fetch = tokenSource((r) async => FetchedToken(token: 'tok-${r.session.channel}'));
    final outcome = await fetch(_request());
    expect(outcome.token?.token, 'tok-live-1');
    expect(outcome.failure, isNull);
  });

  test('a thrown TokenSourceException.http keeps status and Retry-After', () async {
    final fetch = tokenSource((r) async => throw TokenSourceException.http(429,
        retryAfter: const Duration(seconds: 7), message: 'rate_limited'));
    final failure = (await fetch(_request())).failure!;
    expect(failure.kind, FetchFailureKind.httpStatus);
    expect(failure.httpStatus, 429);
    expect(failure.retryAfter, const Duration(seconds: 7));
    expect(failure.message, 'rate_limited');
  });

  test('a timeout becomes a timeout failure', () async {
    final fetch = tokenSource((r) async => throw TimeoutException('slow'));
    expect((await fetch(_request())).failure!.kind, FetchFailureKind.timeout);
  });

  test('any other exception is a network failure reported by its first line only', () async {
    final fetch = tokenSource((r) async => throw StateError('boom\nsecret stack line'));
    final failure = (await fetch(_request())).failure!;
    expect(failure.kind, FetchFailureKind.network);
    expect(failure.message, 'StateError: Bad state: boom');
  });
}
