//! Fetch: downloads artifacts and registry documents over HTTPS with the system trust store,
//! verifies every artifact against the hash its registry published, and keeps it in a
//! content-addressed cache that concurrent guards cannot corrupt.
