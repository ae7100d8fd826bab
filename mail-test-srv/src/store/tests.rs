//! Store indexing, eviction and wait notification.
