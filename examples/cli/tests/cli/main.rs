//! Tests of the `tokenkeeper` command as scripts call it.
