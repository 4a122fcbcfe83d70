// tokenkeeper QA app: run token sessions against the reference backend and watch them live.
//
// Start the backend on your machine (see ../README.md, "QA app"), then run this app on an
// emulator or device, enter the backend URL and admin key, and press "Start session".
import 'dart:async';

import 'package:flutter/material.dart';
import 'package:tokenkeeper/tokenkeeper.dart';

import 'backend.dart';
import 'engine_wiring.dart';

Future<void> main() async {
  WidgetsFlutterBinding.ensureInitialized();
  await initTokenKeeper();
  runApp(const QaApp());
}

class QaApp extends StatelessWidget {
  const QaApp({super.key});

  @override
  Widget build(BuildContext context) => MaterialApp(
        title: 'tokenkeeper QA',
        theme: ThemeData(colorSchemeSeed: Colors.indigo, useMaterial3: true),
        home: const QaHome(),
      );
}

class QaHome extends StatefulWidget {
  const QaHome({super.key});

  @override
  State<QaHome> createState() => _QaHomeState();
}

class _QaHomeState extends State<QaHome> with WidgetsBindingObserver {
  final _url = TextEditingController(text: 'http://10.0.2.2:8080');
  final _adminKey = TextEditingController(text: 'adm_qa');
  final _channel = TextEditingController(text: 'qa-live');
  final _ttl = TextEditingController(text: '60');
  String _vendor = 'agora';
  String _role = 'publisher';

  // One keeper for the whole app; sessions come and go.
  final TokenKeeper _keeper = TokenKeeper();
  final List<_SessionView> _sessions = [];
  Timer? _ticker;
  String? _status;
  int _next = 1;

  @override
  void initState() {
    super.initState();
    WidgetsBinding.instance.addObserver(this);
    // Repaint once a second so "expires in" counts down.
    _ticker = Timer.periodic(const Duration(seconds: 1), (_) => setState(() {}));
  }

  @override
  void didChangeAppLifecycleState(AppLifecycleState state) {
    // Back from the background: re-check every deadline against the wall clock now.
    if (state == AppLifecycleState.resumed) _keeper.resumed();
  }

  @override
  void dispose() {
    WidgetsBinding.instance.removeObserver(this);
    _ticker?.cancel();
    for (final s in _sessions) {
      s.dispose();
    }
    _keeper.shutdown();
    super.dispose();
  }

  Backend get _backend => Backend(baseUrl: _url.text.trim(), adminKey: _adminKey.text.trim());

  Future<void> _guard(String what, Future<void> Function() action) async {
    try {
      await action();
      setState(() => _status = '$what: done');
    } on TokenKeeperError catch (e) {
      setState(() => _status = '$what: ${e.kind.name}: ${e.message}');
    } catch (e) {
      setState(() => _status = '$what: $e');
    }
  }

  /// Creates a user (and, for a publisher, their live stream) on the backend, then opens a
  /// session whose token source calls the backend's RTC token endpoint.
  Future<void> _start() => _guard('start session', () async {
        final backend = _backend;
        final user = await backend.createUser('qa-${DateTime.now().millisecondsSinceEpoch}-${_next++}');
        final channel = _channel.text.trim();
        if (_role == 'publisher') await backend.createStream(channel, user.id);
        final session = _keeper.openSession(
          options: SessionOptions(channel: channel, user: user.id, role: _role, prefetch: true),
          fetch: backend.tokenSourceFor(
              apiKey: user.apiKey, vendor: _vendor, ttlSecs: int.tryParse(_ttl.text)),
        );
        final view = _SessionView(session, user.id, backend, onChange: () => setState(() {}));
        setState(() => _sessions.insert(0, view));
      });

  @override
  Widget build(BuildContext context) {
    return Scaffold(
      appBar: AppBar(title: const Text('tokenkeeper QA')),
      body: ListView(
        padding: const EdgeInsets.all(12),
        children: [
          _connection(),
          if (_status != null)
            Padding(
              padding: const EdgeInsets.symmetric(vertical: 8),
              child: Text(_status!, style: Theme.of(context).textTheme.bodySmall),
            ),
          for (final s in _sessions) _SessionCard(view: s, onClosed: () => setState(() => _sessions.remove(s))),
        ],
      ),
    );
  }

  Widget _connection() => Card(
        child: Padding(
          padding: const EdgeInsets.all(12),
          child: Column(children: [
            TextField(controller: _url, decoration: const InputDecoration(labelText: 'Backend URL')),
            TextField(
                controller: _adminKey,
                obscureText: true,
                decoration: const InputDecoration(labelText: 'Admin key (TOKENKEEPER_ADMIN_KEY)')),
            Row(children: [
              Expanded(
                  child: TextField(
                      controller: _channel, decoration: const InputDecoration(labelText: 'Channel'))),
              const SizedBox(width: 12),
              SizedBox(
                  width: 90,
                  child: TextField(
                      controller: _ttl,
                      keyboardType: TextInputType.number,
                      decoration: const InputDecoration(labelText: 'TTL (s)'))),
            ]),
            Row(children: [
              DropdownButton<String>(
                value: _vendor,
                items: const ['agora', 'zego', 'jwt']
                    .map((v) => DropdownMenuItem(value: v, child: Text(v)))
                    .toList(),
                onChanged: (v) => setState(() => _vendor = v!),
              ),
              const SizedBox(width: 12),
              DropdownButton<String>(
                value: _role,
                items: const ['publisher', 'subscriber']
                    .map((v) => DropdownMenuItem(value: v, child: Text(v)))
                    .toList(),
                onChanged: (v) => setState(() => _role = v!),
              ),
              const Spacer(),
              FilledButton(onPressed: _start, child: const Text('Start session')),
            ]),
            Row(children: [
              const Text('Backend error rate'),
              TextButton(onPressed: () => _guard('error rate 0', () => _backend.setErrorRate(0)), child: const Text('0%')),
              TextButton(onPressed: () => _guard('error rate 50%', () => _backend.setErrorRate(0.5)), child: const Text('50%')),
              TextButton(onPressed: () => _guard('error rate 100%', () => _backend.setErrorRate(1)), child: const Text('100%')),
            ]),
          ]),
        ),
      );
}

/// A session plus what the QA screen shows about it, fed by its event stream.
class _SessionView {
  _SessionView(this.session, this.user, this.backend, {required this.onChange}) {
    engine.onCall = onChange;
    wiring = EngineWiring(session, engine);
    _sub = session.events().listen((e) {
      log.insert(0, e);
      if (log.length > 50) log.removeLast();
      onChange();
    });
  }

  final TokenSession session;
  final String user;
  final Backend backend;
  final VoidCallback onChange;
  final List<SessionEvent> log = [];
  final RecordingEngine engine = RecordingEngine();
  late final EngineWiring wiring;
  String? lastAction;
  late final StreamSubscription<SessionEvent> _sub;

  Future<void> act(String what, Future<void> Function() action) async {
    try {
      await action();
      lastAction = '$what: ok';
    } on TokenKeeperError catch (e) {
      lastAction = '$what: ${e.kind.name}: ${e.message}';
    } catch (e) {
      lastAction = '$what: $e';
    }
    onChange();
  }

  void dispose() {
    _sub.cancel();
    wiring.dispose();
    session.close();
  }
}

class _SessionCard extends StatelessWidget {
  const _SessionCard({required this.view, required this.onClosed});

  final _SessionView view;
  final VoidCallback onClosed;

  @override
  Widget build(BuildContext context) {
    final s = view.session;
    final state = s.state();
    final counters = s.counters();
    final current = s.current();
    final left = current?.expiresAt.difference(DateTime.now());
    final text = Theme.of(context).textTheme;
    return Card(
      child: Padding(
        padding: const EdgeInsets.all(12),
        child: Column(crossAxisAlignment: CrossAxisAlignment.start, children: [
          Row(children: [
            Expanded(child: Text('#${s.id()}  ${s.channel()} / ${view.user}', style: text.titleMedium)),
            Chip(label: Text(state.name), backgroundColor: _stateColor(state)),
          ]),
          Text(current == null
              ? 'no valid token'
              : 'expires in ${_fmt(left!)}  (at ${current.expiresAt.toLocal()})  '
                  'token ${current.token.substring(0, current.token.length < 6 ? current.token.length : 6)}… '
                  'len ${current.token.length}'),
          Text('fetches ${counters.fetches} · renewals ${counters.renewals} · '
              'failures ${counters.failures} · emergency ${counters.emergencyFetches} · '
              'without token ${_fmt(counters.expiredTotal)}'
              '${counters.lastFetchLatency == null ? '' : ' · last fetch ${counters.lastFetchLatency!.inMilliseconds} ms'}'),
          Wrap(spacing: 8, children: [
            // What the engine's "token will expire" callback does (Agora
            // onTokenPrivilegeWillExpire, ZEGO onRoomTokenWillExpire): session.renewToken()
            // → engine.renewToken(token). See engine_wiring.dart.
            OutlinedButton(
                onPressed: () => view.act('force renewal', view.wiring.onTokenWillExpire),
                child: const Text('Force renewal')),
            // What Agora's onRequestToken (the token already expired) does.
            OutlinedButton(
                onPressed: () => view.act('simulate expiry', view.wiring.onTokenExpired),
                child: const Text('Simulate expiry')),
            OutlinedButton(
                onPressed: () => view.act('ban user', () => view.backend.ban(view.user)),
                child: const Text('Ban user')),
            OutlinedButton(
                onPressed: () => view.act('unban user', () => view.backend.unban(view.user)),
                child: const Text('Unban')),
            OutlinedButton(
                onPressed: () => view.act('end stream', () => view.backend.endStream(s.channel())),
                child: const Text('End stream')),
            TextButton(
                onPressed: () {
                  view.dispose();
                  onClosed();
                },
                child: const Text('Close')),
          ]),
          if (view.lastAction != null) Text(view.lastAction!, style: text.bodySmall),
          const Divider(),
          for (final c in view.engine.calls.take(3)) Text(c, style: text.bodySmall),
          for (final e in view.log.take(8)) Text(_describe(e), style: text.bodySmall),
        ]),
      ),
    );
  }

  static String _fmt(Duration d) {
    if (d.isNegative) return '-${_fmt(-d)}';
    final m = d.inMinutes, sec = d.inSeconds % 60;
    return m > 0 ? '${m}m ${sec}s' : '${d.inMilliseconds / 1000}s';
  }

  static String _describe(SessionEvent e) {
    final at = e.at.toLocal().toIso8601String().substring(11, 19);
    final parts = <String>[at, e.kind.name];
    if (e.reason != null) parts.add('reason=${e.reason!.name}');
    if (e.expiresAt != null) parts.add('expires ${e.expiresAt!.toLocal().toIso8601String().substring(11, 19)}');
    if (e.renewAt != null) parts.add('renew ${e.renewAt!.toLocal().toIso8601String().substring(11, 19)}');
    if (e.fetchLatency != null) parts.add('${e.fetchLatency!.inMilliseconds} ms');
    if (e.attempt != null) parts.add('attempt ${e.attempt}');
    if (e.nextRetryAt != null) parts.add('retry ${e.nextRetryAt!.toLocal().toIso8601String().substring(11, 19)}');
    if (e.errorKind != null) parts.add(e.errorKind!.name);
    if (e.message != null) parts.add(e.message!);
    return parts.join('  ');
  }

  static Color _stateColor(SessionState s) => switch (s) {
        SessionState.valid => Colors.green.shade100,
        SessionState.renewing || SessionState.fetching || SessionState.idle => Colors.blue.shade100,
        SessionState.notYetValid => Colors.purple.shade100,
        SessionState.expired => Colors.orange.shade200,
        SessionState.failed => Colors.red.shade200,
        SessionState.closed => Colors.grey.shade300,
      };
}
