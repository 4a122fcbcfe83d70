// Intentionally empty: CocoaPods needs at least one source file in a pod. The plugin's code is
// the Rust static library in Frameworks/TokenKeeperFrb.xcframework, called from Dart via FFI.
