//! Integration and interop tests for capwire live in `tests/`.
