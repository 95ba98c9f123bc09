//! The workload process: what it runs (command, environment, working directory, user),
//! resolved from the image config and the user's options, and how it is started and
//! supervised inside the container (init as pid 1, signal forwarding, exit codes).

pub mod command;
pub mod detach;
pub mod env;
pub mod exec;
pub mod exit;
pub mod fds;
pub mod init;
pub mod output_relay;
pub mod pty;
pub mod relay;
pub mod rlimit;
pub mod signals;
pub mod spec;
pub mod user;

pub use spec::{ProcessError, ProcessOverrides, ProcessSpec};
