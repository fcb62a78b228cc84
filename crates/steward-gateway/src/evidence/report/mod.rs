//! `steward report`: compliance evidence for a period.
