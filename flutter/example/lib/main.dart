// tokenkeeper QA app: run token sessions against the reference backend and watch them live.
//
// Start the backend on your machine (see ../README.md, "QA app"), then run this app on an
// emulator or device, enter the backend URL and admin key, and press "Start session".
//
// Each session hands its tokens to a simulated Agora-like engine through its sink; the app never
// forwards a token. The engine's "will expire" and "request token" callbacks go to the session
// as notifications (simulated_engine.dart).
import 'dart:async';

import 'package:flutter/material.dart';
import 'package:tokenkeeper/tokenkeeper.dart';

import 'backend.dart';
import 'simulated_engine.dart';

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

class _QaHomeState extends State<QaHome> {
  final _url = TextEditingController(text: 'http://10.0.2.2:8080');
  final _adminKey = TextEditingController(text: 'adm_qa');
  final _channel = TextEditingController(text: 'qa-live');
  final _ttl = TextEditingController(text: '60');
  String _vendor = 'agora';
  String _role = 'publisher';
  bool _builtInHttp = false;

  // One keeper for the whole app; sessions come and go.
  final Keeper _keeper = Keeper();
  late final AppLifecycleListener _lifecycle;
  StreamSubscription<LogRecord>? _logs;
  final List<LogRecord> _logLines = [];
  final List<_SessionView> _sessions = [];
  Timer? _ticker;
  String? _status;
  int _next = 1;

  @override
  void initState() {
    super.initState();
    // Back from the background: every session re-checks its deadlines against the wall clock.
    _lifecycle = _keeper.listenToAppLifecycle();
    // The SDK's own log, redacted, shown at the bottom of the screen.
    _logs = setLogSink(minLevel: LogLevel.info).listen((r) => setState(() {
          _logLines.insert(0, r);
          if (_logLines.length > 30) _logLines.removeLast();
        }));
    // Repaint once a second so "expires in" counts down.
    _ticker = Timer.periodic(const Duration(seconds: 1), (_) => setState(() {}));
  }

  @override
  void dispose() {
    _ticker?.cancel();
    unawaited(_logs?.cancel());
    clearLogSink();
    _lifecycle.dispose();
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

  /// Creates a user (and, for a publisher, their live stream) on the backend, opens a session
  /// whose sink is the simulated engine, and joins the engine with the session's first token.
  Future<void> _start() => _guard('start session', () async {
        final backend = _backend;
        final user = await backend.createUser('qa-${DateTime.now().millisecondsSinceEpoch}-${_next++}');
        final channel = _channel.text.trim();
        if (_role == 'publisher') await backend.createStream(channel, user.id);
        final ttl = int.tryParse(_ttl.text);
        final engine = SimulatedEngine();
        final config = SessionConfig(
            spec: SessionSpec(channel: channel, user: user.id, role: _role), prefetch: true);
        final session = _builtInHttp
            ? _keeper.openHttpSession(
                config: config,
                http: backend.httpSourceFor(apiKey: user.apiKey, vendor: _vendor, ttlSecs: ttl),
                sink: engine.renewToken)
            : _keeper.openSession(
                config: config,
                source: backend.tokenSourceFor(apiKey: user.apiKey, vendor: _vendor, ttlSecs: ttl),
                sink: engine.renewToken);
        final view = _SessionView(session, user.id, backend, engine, onChange: () => setState(() {}));
        setState(() => _sessions.insert(0, view));
        // Join: the only token the app ever passes to the engine.
        engine.join(session, await session.token());
      });

  @override
  Widget build(BuildContext context) {
    final small = Theme.of(context).textTheme.bodySmall;
    return Scaffold(
      appBar: AppBar(title: const Text('tokenkeeper QA')),
      body: ListView(
        padding: const EdgeInsets.all(12),
        children: [
          _connection(),
          if (_status != null)
            Padding(
              padding: const EdgeInsets.symmetric(vertical: 8),
              child: Text(_status!, style: small),
            ),
          for (final s in _sessions)
            _SessionCard(view: s, onClosed: () => setState(() => _sessions.remove(s))),
          ExpansionTile(
            title: Text('SDK log (${_logLines.length})'),
            children: [
              for (final r in _logLines)
                Align(
                  alignment: Alignment.centerLeft,
                  child: Text('${r.level.name} ${r.target}: ${r.message}', style: small),
                ),
            ],
          ),
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
            SwitchListTile(
              dense: true,
              contentPadding: EdgeInsets.zero,
              title: const Text('Built-in HTTP source (openHttpSession)'),
              subtitle: const Text('off: a Dart token source with package:http'),
              value: _builtInHttp,
              onChanged: (v) => setState(() => _builtInHttp = v),
            ),
            Row(children: [
              const Text('Backend error rate'),
              TextButton(onPressed: () => _guard('error rate 0', () => _backend.setErrorRate(0)), child: const Text('0%')),
              TextButton(onPressed: () => _guard('error rate 25%', () => _backend.setErrorRate(0.25)), child: const Text('25%')),
              TextButton(onPressed: () => _guard('error rate 100%', () => _backend.setErrorRate(1)), child: const Text('100%')),
            ]),
          ]),
        ),
      );
}

/// A session, its engine and what the QA screen shows about them.
class _SessionView {
  _SessionView(this.session, this.user, this.backend, this.engine, {required this.onChange}) {
    engine.addListener(onChange);
    _events = session.addListener((e) {
      log.insert(0, e);
      if (log.length > 50) log.removeLast();
      onChange();
    });
    // The replaying status stream: the current status first, then every change.
    _status = session.watchStatus().listen((s) {
      status = s;
      onChange();
    });
  }

  final Session session;
  final String user;
  final Backend backend;
  final SimulatedEngine engine;
  final VoidCallback onChange;
  final List<SessionEvent> log = [];
  SessionStatus? status;
  late final ListenerRegistration _events;
  late final StreamSubscription<SessionStatus> _status;
  String? lastAction;

  Future<void> act(String what, FutureOr<void> Function() action) async {
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
    unawaited(_events.remove());
    unawaited(_status.cancel());
    session.close();
    engine.dispose();
  }
}

class _SessionCard extends StatelessWidget {
  const _SessionCard({required this.view, required this.onClosed});

  final _SessionView view;
  final VoidCallback onClosed;

  @override
  Widget build(BuildContext context) {
    final s = view.session;
    final engine = view.engine;
    final counters = s.counters();
    final status = view.status;
    final text = Theme.of(context).textTheme;
    return Card(
      child: Padding(
        padding: const EdgeInsets.all(12),
        child: Column(crossAxisAlignment: CrossAxisAlignment.start, children: [
          Row(children: [
            Expanded(child: Text('#${s.id()}  ${s.spec().channel} / ${view.user}', style: text.titleMedium)),
            if (status != null) Chip(label: Text(status.state.name), backgroundColor: _stateColor(status.state)),
          ]),
          Text(switch (status) {
            null => '…',
            SessionStatus(error: final e?) => 'stopped: ${e.kind.name}: ${e.message}',
            SessionStatus(expiresAt: final at?) => 'session token expires in ${_fmt(at.difference(DateTime.now()))}',
            _ => 'no valid token',
          }),
          Text('engine holds ${engine.held}'
              '${engine.heldExpiry == null ? '' : ', expires in ${_fmt(engine.heldExpiry!.difference(DateTime.now()))}'}'
              ' · applied ${engine.applies} · refused ${engine.refused}'
              ' · held an expired token ${_fmt(engine.timeExpired)} (must stay 0)'),
          Text('fetches ${counters.fetches} · renewals ${counters.renewals} · '
              'failures ${counters.failures} · applies ${counters.applies} · '
              'apply failures ${counters.applyFailures} · emergency ${counters.emergencyFetches} · '
              'without token ${_fmt(counters.timeWithoutToken)}'
              '${counters.lastFetchLatency == null ? '' : ' · last fetch ${counters.lastFetchLatency!.inMilliseconds} ms'}'),
          Wrap(spacing: 8, children: [
            // The engine's callbacks, on demand (they also fire by themselves, 30 s before the
            // held token's expiry and at expiry). Each returns at once; the sink does the rest.
            OutlinedButton(
                onPressed: () => view.act('engine: will expire', engine.fireWillExpire),
                child: const Text('Engine: will expire')),
            OutlinedButton(
                onPressed: () => view.act('engine: request token', engine.fireRequestToken),
                child: const Text('Engine: request token')),
            OutlinedButton(
                onPressed: () => view.act('engine refuses next renewal',
                    () => engine.refuseNextRenewal = true),
                child: const Text('Engine: refuse next renewal')),
            // A renewal now; the new token reaches the engine through the sink, not from here.
            OutlinedButton(
                onPressed: () => view.act('force renewal', () => s.renewToken()),
                child: const Text('Force renewal')),
            OutlinedButton(
                onPressed: () => view.act('ban user', () => view.backend.ban(view.user)),
                child: const Text('Ban user')),
            OutlinedButton(
                onPressed: () => view.act('unban user', () => view.backend.unban(view.user)),
                child: const Text('Unban')),
            OutlinedButton(
                onPressed: () => view.act('end stream', () => view.backend.endStream(s.spec().channel)),
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
          for (final c in engine.calls.take(4)) Text(c, style: text.bodySmall),
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

  static String _time(DateTime t) => t.toLocal().toIso8601String().substring(11, 19);

  static String _describe(SessionEvent e) {
    final parts = <String>[_time(e.at), e.kind.name];
    if (e.reason != null) parts.add('reason=${e.reason!.name}');
    if (e.expiresAt != null) parts.add('expires ${_time(e.expiresAt!)}');
    if (e.renewAt != null) parts.add('renew ${_time(e.renewAt!)}');
    if (e.fetchLatency != null) parts.add('${e.fetchLatency!.inMilliseconds} ms');
    if (e.attempt != null) parts.add('attempt ${e.attempt}');
    if (e.nextRetryAt != null) parts.add('retry ${_time(e.nextRetryAt!)}');
    if (e.error != null) parts.add('${e.error!.kind.name}: ${e.error!.message}');
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
