// Optional app-lifecycle and network glue: it only calls `keeper.resumed()` and
// `keeper.networkAvailable()`; every decision stays in the Rust core. Not compiled here (no
// Swift toolchain on this repository's machines): tree-sitter parses it (scripts/check-syntax.sh).
import Foundation
#if canImport(UIKit)
import UIKit
#elseif canImport(AppKit)
import AppKit
#endif
#if canImport(Network)
import Network
#endif

/// Tells a `Keeper` when the app comes back and when the network does, so that sessions
/// re-check their deadlines at once (a phone that slept for two hours holds a stale token) and
/// retries waiting out a backoff run now.
///
/// | Signal | Platform | Calls |
/// | --- | --- | --- |
/// | `UIApplication.willEnterForegroundNotification`, `UIScene.didActivateNotification` | iOS | `keeper.resumed()` |
/// | `NSWorkspace.didWakeNotification` (the Mac woke from sleep) | macOS | `keeper.resumed()` |
/// | `NWPathMonitor`: the path becomes satisfied, or a satisfied path changes (Wi-Fi → cellular) | iOS, macOS | `keeper.networkAvailable()` |
///
/// On Linux there is nothing to observe: `start()` and `stop()` do nothing; call the keeper
/// yourself. Both calls are cheap and safe to repeat, so observing both the app and the scene
/// notifications is harmless.
///
/// ```swift
/// let signals = LifecycleSignals(keeper: keeper)
/// signals.start()      // e.g. in application(_:didFinishLaunchingWithOptions:)
/// // …
/// signals.stop()       // or release it: it stops when deinitialized
/// ```
public final class LifecycleSignals: @unchecked Sendable {
    private let keeper: Keeper
    private let lock = NSLock()
    private var running = false
    private var observers: [(NotificationCenter, NSObjectProtocol)] = []
    #if canImport(Network)
    private var monitor: NWPathMonitor?
    private var lastPath: NWPath?
    #endif

    /// Signals for `keeper`; nothing is observed before `start()`.
    public init(keeper: Keeper) {
        self.keeper = keeper
    }

    deinit {
        stop()
    }

    /// Whether `start()` was called and `stop()` not since.
    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    /// Starts observing. Calling it again while running does nothing.
    public func start() {
        lock.lock()
        defer { lock.unlock() }
        guard !running else { return }
        running = true
        let keeper = self.keeper
        #if canImport(UIKit)
        let center = NotificationCenter.default
        let names = [UIApplication.willEnterForegroundNotification, UIScene.didActivateNotification]
        for name in names {
            let token = center.addObserver(forName: name, object: nil, queue: nil) { _ in keeper.resumed() }
            observers.append((center, token))
        }
        #elseif canImport(AppKit)
        let center = NSWorkspace.shared.notificationCenter
        let token = center.addObserver(forName: NSWorkspace.didWakeNotification, object: nil, queue: nil) { _ in
            keeper.resumed()
        }
        observers.append((center, token))
        #endif
        #if canImport(Network)
        let monitor = NWPathMonitor()
        monitor.pathUpdateHandler = { [weak self] path in self?.pathUpdated(path) }
        monitor.start(queue: DispatchQueue(label: "dev.tokenkeeper.path-monitor"))
        self.monitor = monitor
        #endif
    }

    /// Stops observing. Calling it again, or before `start()`, does nothing.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard running else { return }
        running = false
        for (center, token) in observers {
            center.removeObserver(token)
        }
        observers.removeAll()
        #if canImport(Network)
        monitor?.cancel() // a cancelled monitor cannot restart: start() makes a new one
        monitor = nil
        lastPath = nil
        #endif
    }

    #if canImport(Network)
    private func pathUpdated(_ path: NWPath) {
        lock.lock()
        let previous = lastPath
        lastPath = path
        let live = running
        lock.unlock()
        // The monitor reports the path once when it starts: that is no change.
        guard live, let before = previous, path.status == .satisfied, path != before else { return }
        keeper.networkAvailable()
    }
    #endif
}
