import 'dart:async';

import 'rust/api/source.dart';

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
  /// before [retryAfter]), 401 needs a new sign-in, 403 is forbidden, 404/410 revoked, any
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

/// Adapts your token fetch function into the `fetch` callback of
/// [TokenKeeper.openSession]: a returned [FetchedToken] is a success, a thrown
/// [TokenSourceException] a classified failure, a [TimeoutException] a timeout, and any other
/// exception a (retried) network failure reported by its type and first line only.
FutureOr<FetchOutcome> Function(TokenRequest) tokenSource(
    Future<FetchedToken> Function(TokenRequest request) fetch) {
  return (TokenRequest request) async {
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
