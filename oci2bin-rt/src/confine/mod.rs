//! Confinement of the workload beyond its namespaces, at least what rootless podman applies
//! by default: a capability set ([`caps`]), a seccomp filter ([`seccomp`]), masked and
//! read-only kernel paths ([`paths`]), and the policy that ties them to the command line
//! ([`policy`]).

pub mod caps;
pub mod paths;
pub mod policy;
pub mod seccomp;
