//! Integration tests: the real `postling` binary on loopback, driven by
//! raw sockets. Python suites under `tests/python` use real mail clients.

mod cli;
mod delivery;
mod docs;
mod lifecycle;
mod smtp;
mod util;
