import Testing

/// Integration tests of `graft serve`'s application: the real model and engine behind a
/// real HTTP server on 127.0.0.1. One at a time, so timing checks do not compete for
/// the two cores with each other.
@Suite(.serialized) struct ServerTests {}
