//! The approved-server registry (see `steward registry`).
