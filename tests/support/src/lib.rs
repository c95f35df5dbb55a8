//! Real parts for the ephemos tests: a tonic echo server on loopback that can be stopped
//! and restarted on the same port, a TCP proxy under the test's control that can refuse,
//! cut or freeze connections and records when it accepted each one, a raw HTTP/2 server
//! that answers pings with GOAWAY `too_many_pings`, and an h2 server that sends a
//! graceful GOAWAY after a number of calls while its listener stays open.
//!
//! Everything binds to `127.0.0.1:0` and stops when its handle is dropped.

mod echo;
mod goaway;
mod proxy;
mod raw_h2;

pub use echo::{EchoServer, EchoService, pb};
pub use goaway::GoAwayServer;
pub use proxy::{Proxy, ProxyMode};
pub use raw_h2::TooManyPingsServer;
