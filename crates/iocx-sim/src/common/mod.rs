//! Machinery shared by every emulator: faults, the request log, the admin routes and the server.

mod faults;
mod server;

pub use faults::{
    ErrorRenderer, FaultArgs, FaultConfig, FaultStateHandle, Faults, RequestLog, RequestRecord,
    admin_routes, fault_layer, plain_error,
};
pub use server::{SimHandle, TlsIdentity, serve};
