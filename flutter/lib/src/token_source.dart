import 'dart:async';

import 'rust/api/events.dart';
import 'rust/api/source.dart';

/// Where a session's tokens come from: your fetch function, as `Keeper.openSession` takes it
/// (`source:`). Build one with [tokenSource] from a function that returns a [FetchedToken] and
/// throws [TokenSourceException].
typedef TokenSource = FutureOr<FetchOutcome> Function(FetchRequest request);

/// Where a session hands every token after the first: your engine's "renew token" call, as
/// `Keeper.openSession` takes it (`sink:`), e.g. `(t) => engine.renewToken(t.token)`.
///
/// Called once per new token, in order, never with an expired one, on the isolate that opened
/// the session. Throw (or return a failed `Future`) when the engine did not take the token: the
/// session retries it (an `applyFailed` event), and a fresh token the engine refuses 3 times in
/// a row, for at least 5 s, is replaced by a new one. The exception never escapes as an uncaught error.
typedef TokenSink = FutureOr<void> Function(IssuedToken token);

/// Thrown by your fetch function to say how a fetch failed; the session decides from it
/// whether to retry (and when) or stop. Keep secrets out of [message].
///
/// ```dart
/// if (response.statusCode != 200) {
///   throw TokenSourceException.http(response.statusCode,
///       retryAfter: parseRetryAfter(response), message: response.reasonPhrase ?? '');
/// }
/// ```
class TokenSourceException implements Exception {
  /// The failure as the session receives it.
  final FetchFailure failure;

  /// A failure of [kind] (see [FetchFailureKind]).
  TokenSourceException(FetchFailureKind kind, String message,
      {Duration? retryAfter, String? setting})
      : failure = FetchFailure(
            kind: kind,
            message: message,
            retryAfter: retryAfter,
            setting: setting);

  /// An HTTP error answer, classified by the core: 408/425/5xx and 429 are retried (never
  /// before [retryAfter]), 401 needs a new sign-in (`ErrorKind.reauthRequired`), 403 and
  /// 404/410 (access revoked, stream ended) stop the session with `ErrorKind.forbidden`, any
  /// other 4xx is a misconfiguration of [setting].
  TokenSourceException.http(int status,
      {Duration? retryAfter, String? setting, String message = ''})
      : failure = FetchFailure(
            kind: FetchFailureKind.httpStatus,
            httpStatus: status,
            retryAfter: retryAfter,
            setting: setting,
            message: message);

  @override
  String toString() => 'TokenSourceException(${failure.kind.name}'
      '${failure.httpStatus == null ? '' : ' ${failure.httpStatus}'}: ${failure.message})';
}

/// Adapts your token fetch function into the `source` of `Keeper.openSession`: a returned
/// [FetchedToken] is a success, a thrown [TokenSourceException] a classified failure, a
/// [TimeoutException] a timeout, and any other exception a (retried) network failure reported by
/// its type and first line only.
///
/// ```dart
/// final source = tokenSource((FetchRequest r) async {
///   final res = await http.post(tokenUrl, body: {'channel': r.session.channel}).timeout(r.timeout);
///   if (res.statusCode != 200) throw TokenSourceException.http(res.statusCode);
///   return FetchedToken(token: jsonDecode(res.body)['token'] as String);
/// });
/// ```
TokenSource tokenSource(Future<FetchedToken> Function(FetchRequest request) fetch) {
  return (FetchRequest request) async {
    try {
      return FetchOutcome(token: await fetch(request));
    } on TokenSourceException catch (e) {
      return FetchOutcome(failure: e.failure);
    } on TimeoutException {
      return FetchOutcome(
          failure: FetchFailure(
              kind: FetchFailureKind.timeout,
              message: 'no answer within ${request.timeout.inMilliseconds} ms'));
    } catch (e) {
      final text = e.toString().split('\n').first;
      return FetchOutcome(
          failure: FetchFailure(
              kind: FetchFailureKind.network,
              message: '${e.runtimeType}: '
                  '${text.length > 200 ? text.substring(0, 200) : text}'));
    }
  };
}
