//! Hosts the workspace-level examples and integration tests; no code of its own.
