//! Server-side token builders (feature `mint`).
