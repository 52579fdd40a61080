//! Tests of `stix_file`.
