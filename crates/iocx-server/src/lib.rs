//! iocx-server: the HTTP surfaces of `iocx serve`.

pub mod edl;
