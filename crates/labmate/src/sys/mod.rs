//! OS facts, and the only place that talks to the OS below the standard
//! library: file locks, processes (spawning with a timeout, process groups
//! from `/proc`, signals).
//!
//! - [`flock`]: advisory locks on open files, waiting or not.
//! - [`proc`]: spawning a command with a timeout and a group kill; signals.
//! - [`procgroup`]: a run's process group from `/proc`: its members, whether
//!   they are still the run's, ending them; seeing a child's exit unreaped.

pub mod flock;
pub mod proc;
pub mod procgroup;
