# iOS side of the tokenkeeper FFI plugin: links the static Rust library (built by
# `scripts/build-native.sh ios` into Frameworks/TokenKeeperFrb.xcframework) into the app.
# Dart finds its symbols in the process (`initTokenKeeper()` uses ExternalLibrary.process), so
# the linker must keep them although nothing in Objective-C/Swift references them: hence
# -force_load of the library.
Pod::Spec.new do |s|
  s.name             = 'tokenkeeper'
  s.version          = '0.1.0'
  s.summary          = 'Keeps short-lived RTC access tokens alive (tokenkeeper Rust core).'
  s.homepage         = 'https://example.invalid/tokenkeeper'
  s.license          = { :type => 'Apache-2.0' }
  s.author           = { 'tokenkeeper' => 'tokenkeeper@example.invalid' }
  s.source           = { :path => '.' }
  s.source_files     = 'Classes/**/*'
  s.platform         = :ios, '12.0'
  s.swift_version    = '5.0'
  s.vendored_frameworks = 'Frameworks/TokenKeeperFrb.xcframework'
  s.pod_target_xcconfig = { 'DEFINES_MODULE' => 'YES' }
  s.user_target_xcconfig = {
    'OTHER_LDFLAGS' => '-force_load "${PODS_XCFRAMEWORKS_BUILD_DIR}/tokenkeeper/libtokenkeeper_frb.a"',
  }
end
