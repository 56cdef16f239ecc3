//! OS facts, and the only place that talks to the OS below the standard
//! library: file locks, processes (spawning with a timeout, process groups
//! from `/proc`, signals, setting up a child before exec), the host and the
//! user, file-system checks, SQLite's file controls and NVML. All of the
//! core's `unsafe` is here, each behind a small safe function.
//!
//! - [`flock`]: advisory locks on open files, waiting or not.
//! - [`proc`]: spawning a command with a timeout and a group kill; signals.
//! - [`procgroup`]: a run's process group from `/proc`: its members, whether
//!   they are still the run's, ending them; seeing a child's exit unreaped.
//! - [`exec`]: finding a program as exec would; a child's setup before exec
//!   (signals, dying with its parent, inherited files, a session of its own).
//! - [`host`]: host name, user name and uid; the kernel's clock tick and page size.
//! - [`fs`]: whether this process may write a path; sizes relative to an open folder;
//!   whether a path is on a network file system.
//! - [`sqlite`]: SQLite file controls: a replaced database file, keeping the WAL files.
//! - [`nvml`]: NVIDIA's management library, loaded at run time: GPUs and their readings.

pub mod exec;
pub mod flock;
pub mod fs;
pub mod host;
pub mod nvml;
pub mod proc;
pub mod procgroup;
pub mod sqlite;
