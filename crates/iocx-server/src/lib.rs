//! iocx-server (being written).
