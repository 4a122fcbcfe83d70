import 'dart:convert';

import 'package:http/http.dart' as http;
import 'package:tokenkeeper/tokenkeeper.dart';

/// The reference backend (`tokenkeeper-server`): its RTC token endpoint, which the token source
/// calls like a production app would, and its admin API, which the QA buttons call.
class Backend {
  Backend({required this.baseUrl, required this.adminKey}) : _http = http.Client();

  /// e.g. `http://10.0.2.2:8080` from the Android emulator.
  final String baseUrl;

  /// Bearer credential of `/admin/...` (`TOKENKEEPER_ADMIN_KEY` of the server).
  final String adminKey;

  final http.Client _http;

  Uri _u(String path) => Uri.parse('$baseUrl$path');

  Map<String, String> _json(String bearer) => {
        'Authorization': 'Bearer $bearer',
        'Content-Type': 'application/json',
      };

  /// Creates (or re-creates under a fresh id) a user and returns its id and API key.
  Future<({String id, String apiKey})> createUser(String id) async {
    final r = await _http.post(_u('/admin/users'),
        headers: _json(adminKey), body: jsonEncode({'id': id}));
    final body = _decode(r, 'create user');
    return (id: body['id'] as String, apiKey: body['api_key'] as String);
  }

  /// Starts a live stream owned by [owner].
  Future<void> createStream(String channel, String owner) async {
    final r = await _http.post(_u('/admin/streams'),
        headers: _json(adminKey),
        body: jsonEncode({'channel': channel, 'owner': owner}));
    _decode(r, 'create stream');
  }

  Future<void> ban(String user) async {
    _decode(await _http.post(_u('/admin/users/$user/ban'), headers: _json(adminKey)), 'ban');
  }

  Future<void> unban(String user) async {
    _decode(await _http.post(_u('/admin/users/$user/unban'), headers: _json(adminKey)), 'unban');
  }

  Future<void> endStream(String channel) async {
    _decode(await _http.post(_u('/admin/streams/$channel/end'), headers: _json(adminKey)),
        'end stream');
  }

  /// Sets the fraction of token requests the server fails (503/500) — to watch retries live.
  Future<void> setErrorRate(double rate) async {
    _decode(
        await _http.put(_u('/admin/faults'),
            headers: _json(adminKey), body: jsonEncode({'error_rate': rate})),
        'set faults');
  }

  Map<String, dynamic> _decode(http.Response r, String what) {
    final body = r.body.isEmpty ? <String, dynamic>{} : jsonDecode(r.body);
    if (r.statusCode >= 300) {
      throw StateError('$what failed: HTTP ${r.statusCode} ${body is Map ? body['error'] : ''}');
    }
    return body is Map<String, dynamic> ? body : <String, dynamic>{};
  }

  /// A token source for [apiKey]: what a production app writes against its own backend.
  /// Success → [FetchedToken] with the server's expiry and time (for skew correction);
  /// an HTTP error → [TokenSourceException.http], classified by the tokenkeeper core.
  TokenSource tokenSourceFor({required String apiKey, required String vendor, int? ttlSecs}) {
    return tokenSource((FetchRequest request) async {
      final r = await _http
          .post(_u('/api/v1/rtc/token'),
              headers: _json(apiKey),
              body: jsonEncode({
                'vendor': vendor,
                'channel': request.session.channel,
                if (request.session.role != null) 'role': request.session.role,
                if (ttlSecs != null) 'ttl_secs': ttlSecs,
              }))
          .timeout(request.timeout);
      final body = r.body.isEmpty ? const {} : jsonDecode(r.body) as Map<String, dynamic>;
      if (r.statusCode != 200) {
        final retry = int.tryParse(r.headers['retry-after'] ?? '');
        throw TokenSourceException.http(r.statusCode,
            retryAfter: retry == null ? null : Duration(seconds: retry),
            setting: r.statusCode == 400 ? 'role' : null,
            message: '${body['error'] ?? ''}: ${body['message'] ?? ''}');
      }
      DateTime? time(String key) =>
          body[key] is String ? DateTime.tryParse(body[key] as String) : null;
      return FetchedToken(
        token: body['token'] as String,
        expiresAt: time('expiresAt'),
        issuedAt: time('issuedAt'),
        serverTime: time('serverTime'),
      );
    });
  }

  /// The same request through the SDK's built-in HTTP source (`Keeper.openHttpSession`): no
  /// Dart code runs per fetch; the SDK fills in the placeholders and reads `token`,
  /// `expiresAt` and `serverTime` from the answer.
  HttpSourceConfig httpSourceFor({required String apiKey, required String vendor, int? ttlSecs}) =>
      HttpSourceConfig(
        endpoint: '$baseUrl/api/v1/rtc/token',
        bearer: apiKey,
        jsonBody: jsonEncode({
          'vendor': vendor,
          'channel': '{channel}',
          'role': '{role}',
          if (ttlSecs != null) 'ttl_secs': ttlSecs,
        }),
      );
}
