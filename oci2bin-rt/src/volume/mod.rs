//! Volumes, bind mounts and tmpfs mounts (`-v`, `--mount`, `--tmpfs`): docker's syntax
//! ([`spec`]), the host side of named volumes and host paths ([`host`]); the init mounts
//! them inside the container with [`crate::ns::binds`].

pub mod host;
pub mod spec;
